/* 刷脸认证: record a short selfie clip while telling one action at a time (shown and spoken),
   then upload it. Where the camera or MediaRecorder is refused, the file form below stays. */
(function () {
  "use strict";
  var HOLD_MS = 2000; // the resting face first: the check compares each action with it
  var ACTION_MS = 3000;
  var root = document.getElementById("recorder");
  if (!root) return;
  var start = document.getElementById("start");
  var preview = document.getElementById("preview");
  var instruction = document.getElementById("instruction");
  var steps = Array.prototype.slice.call(document.querySelectorAll("#steps li"));
  var fallback = document.getElementById("fallback");

  function tell(text) {
    instruction.textContent = text;
    if (window.speechSynthesis && window.SpeechSynthesisUtterance) {
      var utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = "zh-CN";
      utterance.rate = 0.9;
      window.speechSynthesis.cancel();
      window.speechSynthesis.speak(utterance);
    }
  }

  function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function canRecord() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  }

  function useFallback(reason) {
    tell(reason + "请用下面的“录视频”按钮。");
    start.hidden = true;
    fallback.scrollIntoView();
  }

  function upload(blob) {
    var form = new FormData();
    form.append("token", root.dataset.token);
    form.append("video", blob, "clip.webm");
    tell("正在上传，请稍等……");
    return fetch(root.dataset.upload, {
      method: "POST",
      body: form,
      headers: { "Accept": "application/json", "X-Face-Token": root.dataset.token },
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().then(function (body) {
        tell(body.message || body.error || "上传没有成功，请回到聊天里再试。");
        if (response.ok) fallback.hidden = true;
      });
    }).catch(function () { tell("网络不好，上传没有成功，请再试一次。"); start.hidden = false; });
  }

  function record(stream) {
    var chunks = [];
    var recorder = new MediaRecorder(stream);
    recorder.ondataavailable = function (event) { if (event.data && event.data.size) chunks.push(event.data); };
    var stopped = new Promise(function (resolve) { recorder.onstop = resolve; });
    recorder.start(500);
    tell("请正对屏幕，先不要动。");
    var sequence = wait(HOLD_MS);
    steps.forEach(function (step) {
      sequence = sequence.then(function () {
        steps.forEach(function (s) { s.classList.remove("now"); });
        step.classList.add("now");
        tell(step.textContent);
        return wait(ACTION_MS);
      });
    });
    return sequence.then(function () {
      recorder.stop();
      return stopped;
    }).then(function () {
      stream.getTracks().forEach(function (track) { track.stop(); });
      var bytes = chunks.reduce(function (n, c) { return n + c.size; }, 0);
      if (bytes > Number(root.dataset.maxBytes)) return useFallback("视频太大了。");
      return upload(new Blob(chunks, { type: recorder.mimeType || "video/webm" }));
    });
  }

  start.addEventListener("click", function () {
    if (!canRecord()) return useFallback("这个浏览器打不开摄像头。");
    start.hidden = true;
    document.getElementById("steps").hidden = false;
    navigator.mediaDevices.getUserMedia({
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      audio: false
    }).then(function (stream) {
      preview.hidden = false;
      preview.srcObject = stream;
      return record(stream);
    }).catch(function () { useFallback("摄像头没有打开。"); });
  });
})();
