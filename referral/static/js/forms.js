// Every page: after a refused form, the keyboard focus goes to the list of errors (or the first
// invalid field), after an action to its result message, and buttons marked data-confirm ask before they act.
(function () {
  "use strict";
  // A page may name the element to focus (data-focus on <main>): the error list, or a field.
  var main = document.querySelector("[data-focus]");
  // Else the result of the last action (a message already in the page is not announced by itself).
  var target = (main && document.getElementById(main.dataset.focus)) ||
    document.getElementById("fehleruebersicht") || document.querySelector("[aria-invalid=true]") ||
    document.querySelector("[data-flash]");
  if (target) { target.focus(); }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
