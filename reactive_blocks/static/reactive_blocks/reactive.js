// reactive_blocks: keep the stream cursor in the sse-connect URL.
//
// When htmx's SSE extension rebuilds its EventSource after an error it reads the
// sse-connect attribute again and the browser's Last-Event-ID is lost. Storing the
// id of the last event received in the URL lets the server resume from there (and
// resend every block if anything was missed).
(function () {
  "use strict";
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var id = event.detail && event.detail.lastEventId;
    if (!id) {
      return;
    }
    var source = event.target.closest("[sse-connect],[data-sse-connect]");
    if (!source) {
      return;
    }
    var name = source.hasAttribute("sse-connect") ? "sse-connect" : "data-sse-connect";
    var url = new URL(source.getAttribute(name), window.location.href);
    url.searchParams.set("last_event_id", id);
    source.setAttribute(name, url.pathname + url.search);
  });
})();
