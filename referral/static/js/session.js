// Warn five minutes before the idle limit ends the session; "Angemeldet bleiben" asks the server
// for a page, which counts as activity. On a referral form, what was typed is saved as a draft
// shortly before the limit; the server then ends the session and the login leads back to the draft.
(function () {
  "use strict";
  var idle = parseInt(document.body.dataset.sessionIdle || "0", 10);
  var box = document.getElementById("sitzung-warnung");
  if (!idle || !box) { return; }
  var warnAfter = Math.max(idle - 300, 0) * 1000;
  var countdown = box.querySelector("[data-session-countdown]");
  // The countdown is only shown; screen readers hear the warning once, and once more at one minute left.
  var announcement = document.querySelector("[data-session-announcement]");
  function announce(text) { if (announcement) { announcement.textContent = text; } }
  var draftForm = document.querySelector("form[data-save-before-logout]");
  var saveAt = Math.min(20, Math.floor(idle / 2));  // seconds before the end
  if (draftForm) { box.querySelector("[data-session-draft-note]").hidden = false; }
  var timer;
  function schedule() {
    window.clearTimeout(timer);
    box.hidden = true;
    announce("");
    timer = window.setTimeout(warn, warnAfter);
  }
  function warn() {
    var left = Math.min(300, idle);
    var minutes = Math.max(1, Math.round(left / 60));
    box.hidden = false;
    announce("Ihre Sitzung läuft in " + (minutes === 1 ? "einer Minute" : minutes + " Minuten") + " ab. " +
             "Mit „Angemeldet bleiben“ bleiben Sie angemeldet.");
    box.querySelector("button").focus();
    var tick = window.setInterval(function () {
      left -= 1;
      if (box.hidden) { window.clearInterval(tick); return; }
      countdown.textContent = Math.floor(left / 60) + ":" + ("0" + (left % 60)).slice(-2) + " Minuten";
      if (left === 60) { announce("Noch eine Minute bis zur Abmeldung."); }
      if (draftForm && left === saveAt) { window.clearInterval(tick); saveDraftAndLeave(); return; }
      if (left <= 0) { window.clearInterval(tick); window.location.reload(); }
    }, 1000);
  }
  function saveDraftAndLeave() {
    ["save", "session_ending"].forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = "1";
      draftForm.appendChild(input);
    });
    // The form has a button named "submit", which hides the form's own submit() method.
    HTMLFormElement.prototype.submit.call(draftForm);
  }
  box.querySelector("[data-session-extend]").addEventListener("click", function () {
    fetch("/", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(schedule);
  });
  schedule();
})();
