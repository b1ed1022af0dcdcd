// Clicking a region of the outline toggles the matching checkbox of the region list, which stays
// the source of truth (and the way to mark regions with the keyboard or a screen reader).
(function () {
  "use strict";
  document.querySelectorAll("[data-bodymap-form]").forEach(function (container) {
    var map = container.querySelector("[data-bodymap]");
    var boxes = container.querySelectorAll("input[type=checkbox][name=body_marks]");
    function sync() {
      boxes.forEach(function (box) {
        var region = map.querySelector('[data-value="' + box.value + '"]');
        if (region) { region.classList.toggle("marked", box.checked); }
      });
    }
    map.addEventListener("click", function (event) {
      var region = event.target.closest(".region");
      if (!region) { return; }
      boxes.forEach(function (box) {
        if (box.value === region.dataset.value) { box.checked = !box.checked; }
      });
      sync();
    });
    boxes.forEach(function (box) { box.addEventListener("change", sync); });
    sync();
  });
  // Show the phone-call fields only for "akut", and the reason or date fields by choice.
  document.querySelectorAll("[data-show-when]").forEach(function (target) {
    var rule = target.dataset.showWhen.split("=");
    var inputs = document.querySelectorAll('input[name="' + rule[0] + '"]');
    function update() {
      var checked = document.querySelector('input[name="' + rule[0] + '"]:checked');
      var values = rule[1].split("|");
      target.hidden = !(checked && values.indexOf(checked.value) !== -1);
    }
    inputs.forEach(function (input) { input.addEventListener("change", update); });
    update();
  });
  // A second click while the first is on its way would send the referral twice.
  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      window.setTimeout(function () { sent = false; }, 8000);  // let a stalled request be retried
    });
  });
  // Drafts save themselves a few seconds after typing stops being new, without a page load: nothing
  // moves, the focus stays. The first save of a new referral creates the draft; the form then
  // points at it. Leaving the page sends what is unsaved with sendBeacon.
  document.querySelectorAll("form[data-autosave]").forEach(function (form) {
    var url = form.dataset.autosave;
    var status = form.querySelector("[data-autosave-status]");
    var problem = form.querySelector("[data-autosave-problem]");
    // Announce a failure once (not every round while it lasts); a routine save is only shown.
    function report(text, failed) {
      status.textContent = text;
      if (!problem) { return; }
      if (!failed) { problem.textContent = ""; } else if (problem.textContent !== text) { problem.textContent = text; }
    }
    var dirty = false, busy = false;
    function body() {
      var data = new FormData(form);
      data.delete("attachment");  // files go with an explicit save
      return data;
    }
    function save() {
      if (!dirty || busy) { return; }
      dirty = false;
      busy = true;
      fetch(url, { method: "POST", body: body(), credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!(response.headers.get("Content-Type") || "").startsWith("application/json")) {
            throw new Error("no json");
          }
          return response.json();
        })
        .then(function (answer) {
          if (answer.saved) {
            report("Automatisch gespeichert um " + answer.at + " Uhr.", false);
            if (url !== answer.autosave_url) {
              url = answer.autosave_url;
              form.action = answer.edit_url;
              window.history.replaceState(null, "", answer.edit_url);
            }
          } else {
            report(answer.message, true);
          }
        })
        .catch(function () {
          dirty = true;  // try again with the next round
          report("Automatisches Speichern gerade nicht möglich; bitte „Entwurf speichern“ nutzen.", true);
        })
        .finally(function () { busy = false; });
    }
    form.addEventListener("input", function () { dirty = true; });
    form.addEventListener("change", function () { dirty = true; });
    form.addEventListener("submit", function () { dirty = false; });
    window.setInterval(save, 3000);
    window.addEventListener("pagehide", function () {
      if (dirty && navigator.sendBeacon) { navigator.sendBeacon(url, body()); }
    });
  });
  // After a reload that added a field or found errors, put the keyboard focus where work goes on.
  var main = document.querySelector("[data-focus]");
  var target = main && document.getElementById(main.dataset.focus);
  if (target) { target.focus(); }
})();
