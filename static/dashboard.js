// BTRO dashboard: copy buttons, job polling, expiry countdown, stem waveforms. No libraries.
(function () {
  "use strict";

  // Copy: a button with data-copy="#id" copies that element's text.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    copyText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Filters apply as soon as one changes; the Filter button stays for browsers without JS.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function () { form.submit(); });
  });

  // Forms that upload: show that something is happening.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var busy = form.getAttribute("data-busy-text");
    var button = form.querySelector("button[type=submit]");
    if (busy && button) {
      button.disabled = true;
      button.textContent = busy;
    }
  });

  // Job page: poll the dashboard's JSON endpoint every 2 s while the job is queued.
  var state = document.getElementById("job-state");
  if (state && state.getAttribute("data-status") === "queued") {
    var bar = state.querySelector("progress");
    var text = state.querySelector("[data-progress-text]");
    var poll = function () {
      fetch(state.getAttribute("data-poll-url"), { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) {
          if (!job) return;
          if (job.status !== "queued") { window.location.reload(); return; }
          if (bar) bar.value = job.progress;
          if (text) text.textContent = job.progress ? "Separating… " + job.progress + "%" : "Queued…";
        })
        .catch(function () {})
        .finally(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 2000);
  }

  // Time left before the results expire.
  document.querySelectorAll("[data-expires]").forEach(function (el) {
    var expires = parseInt(el.getAttribute("data-expires"), 10) * 1000;
    var tick = function () {
      var left = Math.max(0, Math.round((expires - Date.now()) / 1000));
      if (left === 0) { el.textContent = "no time"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = (h ? h + " h " : "") + m + " min " + (h ? "" : s + " s");
      setTimeout(tick, 1000);
    };
    tick();
  });

  // Waveforms: decode each stem with the Web Audio API and draw its peaks on the canvas.
  var AudioCtx = window.AudioContext || window.webkitAudioContext;
  var canvases = Array.prototype.slice.call(document.querySelectorAll("canvas.waveform"));
  var accent = getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#635bff";

  function peaksOf(buffer, columns) {
    var channels = [];
    for (var c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
    var per = Math.max(1, Math.floor(buffer.length / columns));
    var peaks = new Float32Array(columns);
    for (var i = 0; i < columns; i++) {
      var max = 0, start = i * per, end = Math.min(buffer.length, start + per);
      for (var ch = 0; ch < channels.length; ch++) {
        var data = channels[ch];
        for (var j = start; j < end; j += 4) {
          var v = Math.abs(data[j]);
          if (v > max) max = v;
        }
      }
      peaks[i] = max;
    }
    return peaks;
  }

  function draw(canvas, peaks, played) {
    var ctx = canvas.getContext("2d");
    var w = canvas.width, h = canvas.height, mid = h / 2;
    var top = 0;
    for (var k = 0; k < peaks.length; k++) if (peaks[k] > top) top = peaks[k];
    var scale = top > 0 ? (mid - 2) / top : 0;
    ctx.clearRect(0, 0, w, h);
    for (var x = 0; x < peaks.length; x++) {
      var y = Math.max(1, peaks[x] * scale);
      ctx.fillStyle = x / peaks.length <= played ? accent : "#b9bfd0";
      ctx.fillRect(x, mid - y, 1, y * 2);
    }
  }

  function setUp(canvas, context) {
    var ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(100, Math.floor(canvas.clientWidth * ratio));
    canvas.height = Math.floor(64 * ratio);
    var audio = document.getElementById(canvas.getAttribute("data-audio"));
    return fetch(canvas.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (response) { return response.arrayBuffer(); })
      .then(function (bytes) {
        return new Promise(function (resolve, reject) { context.decodeAudioData(bytes, resolve, reject); });
      })
      .then(function (buffer) {
        var peaks = peaksOf(buffer, canvas.width);
        var redraw = function () {
          var played = audio && audio.duration ? audio.currentTime / audio.duration : 0;
          draw(canvas, peaks, played);
        };
        redraw();
        canvas.setAttribute("data-drawn", "true");
        if (audio) {
          audio.addEventListener("timeupdate", redraw);
          audio.addEventListener("seeked", redraw);
          canvas.addEventListener("click", function (event) {
            var rect = canvas.getBoundingClientRect();
            var at = (event.clientX - rect.left) / rect.width;
            if (audio.duration) audio.currentTime = at * audio.duration;
          });
        }
      })
      .catch(function () { canvas.setAttribute("data-drawn", "failed"); });
  }

  if (canvases.length && AudioCtx) {
    var context = new AudioCtx();
    // One stem at a time keeps memory flat on long tracks.
    canvases.reduce(function (previous, canvas) {
      return previous.then(function () { return setUp(canvas, context); });
    }, Promise.resolve()).then(function () {
      if (context.close) context.close();
    });
  }

  // One player at a time, like a music app.
  document.addEventListener("play", function (event) {
    document.querySelectorAll("audio").forEach(function (audio) {
      if (audio !== event.target) audio.pause();
    });
  }, true);
})();
