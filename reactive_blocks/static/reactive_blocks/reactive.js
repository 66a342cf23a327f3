// reactive_blocks: small helpers around htmx's SSE extension.
(function () {
  "use strict";

  function connectAttribute(element) {
    return element.hasAttribute("sse-connect") ? "sse-connect" : "data-sse-connect";
  }

  // When the extension rebuilds its EventSource after an error it reads the
  // sse-connect attribute again, and the browser's Last-Event-ID is lost. Keeping
  // the id of the last event in the URL lets the server resume from there (and
  // resend every block if anything was missed).
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var id = event.detail && event.detail.lastEventId;
    var source = id && event.target.closest("[sse-connect],[data-sse-connect]");
    if (!source) {
      return;
    }
    var name = connectAttribute(source);
    var url = new URL(source.getAttribute(name), window.location.href);
    url.searchParams.set("last_event_id", id);
    source.setAttribute(name, url.pathname + url.search);
  });

  // A stream the server refuses (403: access ended, token expired; 404) would be
  // retried by the extension forever. Ask once why it failed: if refused, stop
  // retrying and mark the element stale, so the page can offer a reload.
  document.addEventListener("htmx:sseError", function (event) {
    var source = event.detail && event.detail.source;
    var element = event.target;
    if (!source || source.readyState !== EventSource.CLOSED || !element.getAttribute) {
      return;
    }
    var name = connectAttribute(element);
    var url = element.getAttribute(name);
    if (!url) {
      return;
    }
    var probe = new AbortController();
    fetch(url, { signal: probe.signal, headers: { Accept: "text/event-stream" } })
      .then(function (response) {
        probe.abort(); // never read a stream that did open
        if (response.status === 403 || response.status === 404) {
          element.removeAttribute(name);
          element.setAttribute("data-reactive-stale", String(response.status));
          element.dispatchEvent(
            new CustomEvent("reactive:stale", { bubbles: true, detail: { status: response.status } })
          );
        }
      })
      .catch(function () {
        // Network trouble: the extension's own retries go on.
      });
  });
})();
