"""The dialogue: the engines (embedded, or a Rasa server), the rasa_sdk actions, the stores."""
