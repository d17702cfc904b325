"""The domain: roster, certification policy, records, reviews, home visits. No Flask here."""
