// Every page: after a refused form, the keyboard focus goes to the list of errors (or the first
// invalid field), and buttons marked data-confirm ask before they act.
(function () {
  "use strict";
  if (!document.querySelector("[data-focus]")) {
    var target = document.getElementById("fehleruebersicht") || document.querySelector("[aria-invalid=true]");
    if (target) { target.focus(); }
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
    });
  });
})();
