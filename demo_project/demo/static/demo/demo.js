// The demo's own behaviour (the library needs none of it): say when a save failed,
// and warn an editor whose form is older than the document it edits.
(function () {
  "use strict";

  document.addEventListener("htmx:sendError", function (event) {
    show(event.target, "Not saved: the server cannot be reached. Your text is still here; try again.");
  });
  document.addEventListener("htmx:responseError", function (event) {
    show(event.target, "Not saved: the server answered " + event.detail.xhr.status + ".");
  });

  function show(element, text) {
    var form = element.closest ? element.closest("form") : null;
    var status = form && form.querySelector(".save-status");
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
  }

  // The version block is live; the form keeps the version it was opened at.
  document.addEventListener("htmx:afterSettle", function () {
    var live = document.querySelector("#doc-version [data-version]");
    var form = document.querySelector("#editor input[name=version]");
    var notice = document.querySelector("#editor .changed");
    if (!live || !form || !notice) {
      return;
    }
    notice.hidden = live.dataset.version === form.value;
  });
})();
