// Warn five minutes before the idle limit ends the session; "Angemeldet bleiben" asks the server
// for a page, which counts as activity.
(function () {
  "use strict";
  var idle = parseInt(document.body.dataset.sessionIdle || "0", 10);
  var box = document.getElementById("sitzung-warnung");
  if (!idle || !box) { return; }
  var warnAfter = Math.max(idle - 300, 0) * 1000;
  var countdown = box.querySelector("[data-session-countdown]");
  var timer;
  function schedule() {
    window.clearTimeout(timer);
    box.hidden = true;
    timer = window.setTimeout(warn, warnAfter);
  }
  function warn() {
    var left = Math.min(300, idle);
    box.hidden = false;
    box.querySelector("button").focus();
    var tick = window.setInterval(function () {
      left -= 1;
      if (box.hidden) { window.clearInterval(tick); return; }
      countdown.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2) + " Minuten";
      if (left <= 0) { window.clearInterval(tick); window.location.reload(); }
    }, 1000);
  }
  box.querySelector("[data-session-extend]").addEventListener("click", function () {
    fetch("/", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(schedule);
  });
  schedule();
})();
