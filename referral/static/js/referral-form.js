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
  // After a reload that added a field or found errors, put the keyboard focus where work goes on.
  var main = document.querySelector("[data-focus]");
  var target = main && document.getElementById(main.dataset.focus);
  if (target) { target.focus(); }
})();
