// 审核页：放大、旋转、拖动照片；键盘快捷键（审核员一天要审几百张）。No libraries, no network.
(function () {
  "use strict";
  var photo = document.getElementById("photo");
  var view = { scale: 1, angle: 0, x: 0, y: 0 };

  function apply() {
    if (!photo) return;
    photo.style.transform = "translate(" + view.x + "px," + view.y + "px) rotate(" + view.angle +
      "deg) scale(" + view.scale + ")";
  }
  function zoom(factor) { view.scale = Math.min(8, Math.max(0.5, view.scale * factor)); apply(); }
  function rotate(degrees) { view.angle = (view.angle + degrees + 360) % 360; apply(); }
  function reset() { view = { scale: 1, angle: 0, x: 0, y: 0 }; apply(); }

  document.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () { zoom(button.dataset.zoom === "in" ? 1.25 : 0.8); });
  });
  document.querySelectorAll("[data-rotate]").forEach(function (button) {
    button.addEventListener("click", function () { rotate(parseInt(button.dataset.rotate, 10)); });
  });
  document.querySelectorAll("[data-reset]").forEach(function (button) {
    button.addEventListener("click", reset);
  });
  if (photo) {
    var stage = photo.parentElement;
    stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      zoom(event.deltaY < 0 ? 1.15 : 0.87);
    }, { passive: false });
    var drag = null;
    stage.addEventListener("pointerdown", function (event) {
      drag = { x: event.clientX - view.x, y: event.clientY - view.y };
      stage.setPointerCapture(event.pointerId);
    });
    stage.addEventListener("pointermove", function (event) {
      if (!drag) return;
      view.x = event.clientX - drag.x; view.y = event.clientY - drag.y; apply();
    });
    stage.addEventListener("pointerup", function () { drag = null; });
  }

  var form = document.getElementById("decision");
  var reasons = document.getElementById("reasons");
  var opener = document.getElementById("reject-open");
  var next = document.getElementById("next");
  var sending = false;

  function openReasons() {
    if (!reasons) return;
    reasons.hidden = false;
    opener.setAttribute("aria-expanded", "true");
    var first = reasons.querySelector("input[type=radio]");
    if (first) first.focus();
  }
  if (opener) opener.addEventListener("click", openReasons);

  function submit(button) {
    if (button.value === "approve") {
      var unticked = form.querySelectorAll("input[name=checklist]:not(:checked)");
      if (unticked.length) {
        alert("请先逐项核对照片要求并勾选（按 Y 全部勾选）。");
        return;
      }
    }
    form.requestSubmit(button);
  }
  if (form) {
    // One decision per page, however fast the keys are pressed (the server decides once anyway).
    form.addEventListener("submit", function (event) {
      if (sending) { event.preventDefault(); return; }
      sending = true;
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var typing = event.target.matches("input[type=text], input:not([type]), textarea, select");
    if (typing && event.key !== "Enter" && event.key !== "Escape") return;
    var key = event.key;
    if (key === "+" || key === "=") { zoom(1.25); }
    else if (key === "-") { zoom(0.8); }
    else if (key === "[") { rotate(-90); }
    else if (key === "]") { rotate(90); }
    else if (key === "0") { reset(); }
    else if ((key === "n" || key === "N") && next) { next.click(); }
    else if (!form) { return; }
    else if (key === "a" || key === "A") { submit(document.getElementById("approve")); }
    else if (key === "r" || key === "R") { openReasons(); }
    else if (key === "y" || key === "Y") {
      form.querySelectorAll("input[name=checklist]").forEach(function (box) { box.checked = true; });
    }
    else if (/^[1-9]$/.test(key)) {
      var index = parseInt(key, 10) - 1;
      if (reasons && !reasons.hidden) {
        var radio = reasons.querySelectorAll("input[type=radio]")[index];
        if (radio) {
          radio.checked = true;
          if (radio.hasAttribute("data-needs-text")) document.getElementById("reason-text").focus();
        }
      } else {
        var box = form.querySelectorAll("input[name=checklist]")[index];
        if (box) box.checked = !box.checked;
      }
    }
    else if (key === "Enter" && reasons && !reasons.hidden) {
      event.preventDefault();
      submit(document.getElementById("reject"));
    }
    else if (key === "Escape" && reasons) { reasons.hidden = true; opener.setAttribute("aria-expanded", "false"); }
    else { return; }
    event.preventDefault();
  });
})();
