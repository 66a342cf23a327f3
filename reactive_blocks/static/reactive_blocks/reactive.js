// reactive_blocks: small helpers around htmx's SSE extension.
(function () {
  "use strict";

  // The connected element says how its stream is doing, for indicators and CSS:
  // data-reactive-state is "connecting", "live", "reconnecting", "offline"
  // (the browser lost the network), "ended" (the server closed it for good) or
  // "refused" (403/404 on reconnect), and a reactive:state event tells it too.
  function setState(element, state) {
    if (!element.setAttribute || element.getAttribute("data-reactive-state") === state) {
      return;
    }
    element.setAttribute("data-reactive-state", state);
    element.dispatchEvent(
      new CustomEvent("reactive:state", { bubbles: true, detail: { state: state } })
    );
  }

  // Swapped blocks are morphed into the page (idiomorph) instead of replaced:
  // what the user is doing inside one survives an update. The focused field keeps
  // its focus, caret and text (while it has focus its text wins over the
  // server's), an open <details> stays open, scrolled elements keep their place;
  // everything else updates. An sse-swap element with an hx-swap of its own is
  // swapped that way instead.
  var MORPH = {
    morphStyle: "innerHTML",
    ignoreActiveValue: true,
    restoreFocus: true,
    callbacks: {
      beforeAttributeUpdated: function (name, node) {
        return !(name === "open" && node.tagName === "DETAILS");
      },
    },
  };

  if (window.htmx && window.Idiomorph) {
    htmx.defineExtension("reactive-morph", {
      handleSwap: function (style, target, fragment) {
        if (style !== "reactive-morph") {
          return false;
        }
        // childNodes, not children: a block's text is content too. A block of
        // text alone has nothing to keep, and idiomorph leaves an element alone
        // when given no element: it is replaced.
        var nodes = Array.prototype.slice.call(fragment.childNodes);
        if (fragment.children.length === 0) {
          target.replaceChildren.apply(target, nodes);
        } else {
          Idiomorph.morph(target, nodes, MORPH);
        }
        // Handed back, the elements get their htmx behaviour (hx-post...) as
        // any swapped content does.
        return Array.prototype.slice.call(target.children);
      },
    });
    document.addEventListener("htmx:sseBeforeMessage", function (event) {
      var element = event.target;
      if (element.hasAttribute && element.hasAttribute("sse-swap") && !element.hasAttribute("hx-swap")) {
        element.setAttribute("hx-swap", "reactive-morph");
      }
    });
  }

  document.addEventListener("htmx:sseOpen", function (event) {
    setState(event.target, "live");
    var source = event.detail && event.detail.source;
    if (source && !source.reactiveReload) {
      source.reactiveReload = true;
      source.addEventListener("reactive-reload", function (message) {
        reloadBlock(event.target, message.data);
      });
    }
  });

  // A block too large to stream (MAX_FRAGMENT_BYTES) arrives as its name only:
  // fetch the page over a normal request and swap those blocks' content from it,
  // into the same elements, as the stream would have (they keep listening). The
  // names of one burst share one fetch, after a random delay of up to a second,
  // so a thousand viewers do not ask for the page at the same instant.
  var reloading = null;

  function reloadBlock(root, name) {
    if (!reloading) {
      reloading = { root: root, names: {} };
      setTimeout(fetchBlocks, Math.random() * 1000);
    }
    reloading.names[name] = true;
  }

  function selectorOf(name) {
    var value = CSS.escape(name);
    return '[sse-swap~="' + value + '"],[data-sse-swap~="' + value + '"]';
  }

  function fetchBlocks() {
    var root = reloading.root;
    var names = Object.keys(reloading.names);
    reloading = null;
    if (!window.htmx) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      })
      .then(function (text) {
        var page = new DOMParser().parseFromString(text, "text/html");
        names.forEach(function (name) {
          var target = root.querySelector(selectorOf(name));
          var fresh = page.querySelector(selectorOf(name));
          if (target && fresh && document.body.contains(target)) {
            window.htmx.swap(target, fresh.innerHTML, { swapStyle: "innerHTML" });
          }
        });
      })
      .catch(function () {
        // The next change of the block, or a reload of the page, shows it.
      });
  }

  document.addEventListener("htmx:sseClose", function (event) {
    if (event.detail && event.detail.type === "message") {
      setState(event.target, "ended");
    }
  });
  document.addEventListener("htmx:sseError", function (event) {
    setState(event.target, navigator.onLine === false ? "offline" : "reconnecting");
  });
  document.addEventListener("reactive:stale", function (event) {
    setState(event.target, "refused");
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[sse-connect],[data-sse-connect]").forEach(function (element) {
      if (!element.hasAttribute("data-reactive-state")) {
        setState(element, "connecting");
      }
    });
  });

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
    // probe=1: the server answers whether it would serve the stream, and opens
    // none (a second stream for this page's token would replace the first).
    var probeUrl = new URL(url, window.location.href);
    probeUrl.searchParams.set("probe", "1");
    var probe = new AbortController();
    fetch(probeUrl, { signal: probe.signal, headers: { Accept: "text/event-stream" } })
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
