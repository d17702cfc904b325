/* Web chat: a client in the REST channel's format (POST /chat/messages; later news: /chat/inbox).
 *
 * Safety rules kept throughout this file:
 * - every piece of user or bot text goes into the page with textContent, never innerHTML;
 * - which conversation this is, the server decides: a signed HttpOnly cookie this script never
 *   sees (no conversation id in a request body, nothing personal in a URL);
 * - an error is told in a kind Chinese sentence, never as the API's raw JSON;
 * - the chat history is not stored on the device (people type ID numbers into it).
 */
(function () {
  "use strict";

  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var photoButton = document.getElementById("photo");
  var photoInput = document.getElementById("photo-input");
  var biggerButton = document.getElementById("bigger");

  var WEBHOOK = log.dataset.webhook || "/chat/messages";
  var INBOX = log.dataset.inbox || "/chat/inbox";
  var INBOX_POLL_MS = Number(log.dataset.inboxPollMs) || 15000;
  var MAX_PHOTO_BYTES = Number(log.dataset.maxPhotoBytes) || 10 * 1024 * 1024;
  var MAX_BODY_BYTES = Number(log.dataset.maxBodyBytes) || 10 * 1024 * 1024;
  var HOTLINE = log.dataset.hotline || "12333";
  var BIGGER_KEY = "pension-chat-bigger";

  var TEXT = {
    photoTooBig: "这张照片太大了（超过10MB），发不出去。请换一张，或者用手机重新拍一张再发。",
    notAPhoto: "请选择一张照片（图片文件）。",
    photoUnreadable: "这张照片打不开，请换一张再试。",
    tooFast: "您发得太快了，请等一分钟再发。",
    tooLong: "这条消息太长了（或照片太大），发不出去。请分几次发短一点的话，或换一张照片。",
    notUnderstood: "这条消息没能发出去，请换个说法再试一次。",
    busy: "系统有点忙，没能回复您。请过一会儿再发一次，或拨打 " + HOTLINE + " 咨询。",
    offline: "网络不太好，消息没发出去。请稍后再试，或拨打 " + HOTLINE + " 咨询。",
    retry: "再发一次",
    typing: "正在回复，请稍等……",
    photoLabel: "📷 我发了一张照片",
    link: "点这里打开",
  };

  // -- small helpers -----------------------------------------------------------------------
  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      /* private mode: the id lives as long as the page */
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(url) {
    if (typeof url !== "string") return null;
    if (/^https?:\/\//i.test(url) || /^\/(?!\/)/.test(url)) return url;
    return null;
  }

  function scrollToShow(node) {
    // Show the start of a new answer (long FAQ answers are read from the top), or the bottom.
    var target = node ? node.offsetTop - 72 : log.scrollHeight;
    log.scrollTop = Math.max(0, Math.min(target, log.scrollHeight));
  }

  // -- rendering ---------------------------------------------------------------------------
  function addUser(text, imageUrl) {
    var bubble = el("div", "msg user", text);
    if (imageUrl) {
      var img = el("img");
      img.src = imageUrl;
      img.alt = "我发的照片";
      bubble.appendChild(img);
    }
    log.appendChild(bubble);
    scrollToShow();
    return bubble;
  }

  function addNotice(text, retry) {
    var bubble = el("div", "msg notice", text);
    bubble.setAttribute("role", "alert");
    log.appendChild(bubble);
    if (retry) {
      var group = el("div", "choices");
      var again = el("button", "choice", TEXT.retry);
      again.type = "button";
      again.addEventListener("click", function () {
        group.remove();
        retry();
      });
      group.appendChild(again);
      log.appendChild(group);
    }
    scrollToShow(bubble);
  }

  function addBot(message) {
    var first = null;
    if (message.text || message.image || (message.custom && message.custom.link)) {
      var bubble = el("div", "msg bot", message.text || "");
      var image = safeUrl(message.image);
      if (image) {
        var img = el("img");
        img.src = image;
        img.alt = "图片";
        bubble.appendChild(img);
      }
      var link = message.custom && safeUrl(message.custom.link);
      if (link) {
        if (message.text) bubble.appendChild(document.createTextNode("\n"));
        var a = el("a", null, TEXT.link);
        a.href = link;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        bubble.appendChild(a);
      }
      log.appendChild(bubble);
      first = bubble;
    }
    if (Array.isArray(message.buttons) && message.buttons.length) {
      var group = el("div", "choices");
      group.setAttribute("role", "group");
      message.buttons.forEach(function (button) {
        if (!button || typeof button.title !== "string") return;
        var choice = el("button", "choice", button.title);
        choice.type = "button";
        choice.addEventListener("click", function () {
          choice.classList.add("chosen");
          send(typeof button.payload === "string" ? button.payload : button.title, button.title);
        });
        group.appendChild(choice);
      });
      log.appendChild(group);
      first = first || group;
    }
    return first;
  }

  // -- talking to the bot ------------------------------------------------------------------
  var queue = Promise.resolve();

  function post(body) {
    return fetch(WEBHOOK, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: body,
    });
  }

  function deliver(body, retry) {
    var typing = el("div", "msg bot typing", TEXT.typing);
    log.appendChild(typing);
    scrollToShow();
    return post(body)
      .then(function (response) {
        if (!response.ok) {
          var error = new Error("HTTP " + response.status);
          error.status = response.status;
          throw error;
        }
        return response.json().catch(function () {
          var garbled = new Error("not JSON");
          garbled.status = 502; // a proxy's HTML page: the service is not answering properly
          throw garbled;
        });
      })
      .then(function (replies) {
        typing.remove();
        var first = null;
        (Array.isArray(replies) ? replies : []).forEach(function (reply) {
          var shown = addBot(reply || {});
          first = first || shown;
        });
        scrollToShow(first);
      })
      .catch(function (error) {
        typing.remove();
        showFailure(error.status, retry);
      });
  }

  /* What a failed send looks like to the user: a sentence, and a retry where one can help. */
  function showFailure(status, retry) {
    if (status === 429) addNotice(TEXT.tooFast);
    else if (status === 413) addNotice(TEXT.tooLong);
    else if (status >= 500) addNotice(TEXT.busy, retry);
    else if (status >= 400) addNotice(TEXT.notUnderstood);
    else addNotice(TEXT.offline, retry);
  }

  function enqueue(job) {
    queue = queue.then(job, job);
    return queue;
  }

  /* A function that (re)sends one request body in turn; a failed send offers it again. */
  function retryable(body) {
    var again = function () {
      return enqueue(function () {
        return deliver(body, again);
      });
    };
    return again;
  }

  /* Send `message` (typed text or a button's payload), showing `shown` as what the user said. */
  function send(message, shown) {
    if (shown) addUser(shown);
    var body = JSON.stringify({ message: message, metadata: {} });
    return retryable(body)();
  }

  // -- photos ------------------------------------------------------------------------------
  function readBase64(blob) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () {
        var url = String(reader.result);
        resolve(url.slice(url.indexOf(",") + 1));
      };
      reader.onerror = function () {
        reject(reader.error);
      };
      reader.readAsDataURL(blob);
    });
  }

  function shrink(file, maxSide, quality) {
    // A large phone photo is re-encoded so the request fits the server's size limit.
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bitmap) {
      var scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve, reject) {
        canvas.toBlob(
          function (blob) {
            if (blob) resolve(blob);
            else reject(new Error("toBlob failed"));
          },
          "image/jpeg",
          quality
        );
      });
    });
  }

  function fits(base64) {
    return base64.length + 512 <= MAX_BODY_BYTES;
  }

  function photoPayload(file) {
    return readBase64(file).then(function (base64) {
      if (fits(base64)) return base64;
      return shrink(file, 3000, 0.88)
        .then(readBase64)
        .then(function (smaller) {
          if (fits(smaller)) return smaller;
          return shrink(file, 2000, 0.8)
            .then(readBase64)
            .then(function (smallest) {
              if (fits(smallest)) return smallest;
              throw new Error("too big");
            });
        });
    });
  }

  function sendPhoto(file) {
    if (!file) return;
    if (file.size > MAX_PHOTO_BYTES) {
      addNotice(TEXT.photoTooBig);
      return;
    }
    if (file.type && !/^image\//.test(file.type)) {
      addNotice(TEXT.notAPhoto);
      return;
    }
    var preview = null;
    try {
      preview = URL.createObjectURL(file);
    } catch (e) {
      preview = null;
    }
    addUser(TEXT.photoLabel, preview);
    enqueue(function () {
      return photoPayload(file).then(
        function (base64) {
          var body = JSON.stringify({
            message: "/image",
            metadata: { image_base64: base64 },
          });
          return deliver(body, retryable(body));
        },
        function () {
          addNotice(TEXT.photoUnreadable);
        }
      );
    });
  }

  // -- wiring ------------------------------------------------------------------------------
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    input.value = "";
    send(text, text);
    if (window.matchMedia && window.matchMedia("(pointer: coarse)").matches) {
      input.blur(); // close the phone keyboard so the answer can be read
    }
  });

  photoButton.addEventListener("click", function () {
    photoInput.click();
  });

  photoInput.addEventListener("change", function () {
    var file = photoInput.files && photoInput.files[0];
    photoInput.value = "";
    sendPhoto(file);
  });

  function setBigger(on) {
    document.documentElement.classList.toggle("bigger", on);
    biggerButton.setAttribute("aria-pressed", on ? "true" : "false");
    storageSet(BIGGER_KEY, on ? "1" : "0");
  }

  biggerButton.addEventListener("click", function () {
    setBigger(!document.documentElement.classList.contains("bigger"));
  });
  setBigger(storageGet(BIGGER_KEY) === "1");

  /* What staff or a job decided later (a reviewed photo, a reply from a person) waits in the
   * chat's inbox on the server; fetch it now and then, and when the page comes back into view. */
  function checkInbox() {
    return fetch(INBOX, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: "{}",
    })
      .then(function (response) {
        return response.ok ? response.json() : [];
      })
      .then(function (messages) {
        (Array.isArray(messages) ? messages : []).forEach(function (message) {
          scrollToShow(addBot(message || {}));
        });
      })
      .catch(function () {
        /* offline: the messages stay in the inbox until the next check */
      });
  }

  setInterval(checkInbox, INBOX_POLL_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) checkInbox();
  });

  send("/greet"); // the bot says hello and shows what it can do
})();
