// reactive_blocks' client: opens the page's streams, keeps them open, and hands
// their blocks to the page (morphed, or swapped by htmx as the block asks).
//
// Every stream of a page, and of every tab of the browser showing this site,
// travels in one connection (a POST to STREAMS_PATH, see streams/shared.py): the
// tabs share it through a SharedWorker running this same file, or, where there is
// none, each tab opens its own. A connection that fails is opened again after a
// random, growing delay, asking each stream to resume after the last event it
// delivered, so nothing is lost and a restarted server is not hit by every
// browser at once.
(function () {
  "use strict";

  var IN_PAGE = typeof document !== "undefined";
  var CLOSE_EVENT = "reactive-close";
  var RECONNECT_EVENT = "reactive-reconnect";
  var RELOAD_EVENT = "reactive-reload";
  var ROWS_EVENT = "reactive-rows";
  // Backoff after a failure: 0.5 s plus a random part of a window that doubles
  // from 6 s up to 60 s. Spreading the first retry over 6 s is what keeps a
  // restarted server from receiving every browser in the same second.
  var MIN_DELAY = 500;
  var FIRST_WINDOW = 6000;
  var MAX_WINDOW = 60000;
  // Streams that end their lifetime, and tabs that come and go, reopen sooner.
  var SOON = 1000;
  var GATHER = 50;
  // Status codes that refuse a stream for good: the page must be reloaded. For
  // a whole connection, 400 and 413 mean a request the server will never take.
  var REFUSED = { 400: true, 403: true, 404: true, 405: true };
  var CONNECTION_REFUSED = { 400: true, 403: true, 405: true, 413: true };
  // Streams per connection (the server takes 64), and how long a new connection
  // may take to answer before it counts as failed.
  var MAX_STREAMS = 48;
  var OPEN_TIMEOUT = 15000;

  // Streams under keys of the caller's, spread over connections of MAX_STREAMS.
  function Pool(url, listener) {
    this.url = url;
    this.listener = listener;
    this.connections = [];
    this.owners = {}; // key -> connection
  }

  Pool.prototype.add = function (key, url, close) {
    var connection = null;
    for (var i = 0; i < this.connections.length && !connection; i++) {
      if (this.connections[i].size() < MAX_STREAMS) {
        connection = this.connections[i];
      }
    }
    if (!connection) {
      connection = new Connection(this.url, this.listener);
      this.connections.push(connection);
    }
    this.owners[key] = connection;
    connection.add(key, url, close);
  };

  Pool.prototype.remove = function (key) {
    var connection = this.owners[key];
    delete this.owners[key];
    if (connection) {
      connection.remove(key);
    }
  };

  Pool.prototype.online = function () {
    this.connections.forEach(function (connection) {
      connection.online();
    });
  };

  // One connection carrying several streams. It is replaced by opening the next
  // one first: the current one delivers until the next has answered (its first
  // stream is open), then it is closed, so that tabs coming and going cost no
  // gap, and the streams the next one takes over are not counted as new opens.
  function Connection(url, listener) {
    this.url = url;
    this.listener = listener; // event(key, name, data), state(key, state, detail)
    this.streams = {}; // key -> {url, last, close, live, failures}
    this.current = null; // the attempt that delivers: {controller, keys, channel}
    this.next = null; // the attempt that will replace it
    this.timer = null;
    this.due = 0; // when the pending open is due
    this.failures = 0; // failed attempts in a row
  }

  Connection.prototype.size = function () {
    return Object.keys(this.streams).length;
  };

  Connection.prototype.add = function (key, url, close) {
    this.streams[key] = { url: url, last: null, close: close || CLOSE_EVENT, live: null, failures: 0 };
    this.listener.state(key, "connecting");
    this.openIn(GATHER);
  };

  Connection.prototype.remove = function (key) {
    if (this.streams[key]) {
      delete this.streams[key];
      this.openIn(GATHER);
    }
  };

  Connection.prototype.keys = function () {
    return Object.keys(this.streams);
  };

  // Open (again) after ``delay`` ms; an open already due sooner stays.
  Connection.prototype.openIn = function (delay) {
    var due = Date.now() + delay;
    if (this.timer !== null) {
      if (this.due <= due) {
        return;
      }
      clearTimeout(this.timer);
    }
    this.due = due;
    this.timer = setTimeout(this.open.bind(this), delay);
  };

  Connection.prototype.open = function () {
    this.timer = null;
    if (this.next) {
      this.next.controller.abort(); // superseded before it answered
      this.next = null;
    }
    var keys = this.keys();
    if (!keys.length) {
      if (this.current) {
        this.current.controller.abort();
        this.current = null;
      }
      return;
    }
    var self = this;
    var attempt = { controller: new AbortController(), keys: keys, channel: null, late: false };
    if (this.current) {
      this.next = attempt;
    } else {
      this.current = attempt;
    }
    var streams = keys.map(function (key) {
      return { url: self.streams[key].url, last: self.streams[key].last };
    });
    var timeout = setTimeout(function () {
      if (!attempt.channel) {
        attempt.late = true;
        attempt.controller.abort();
      }
    }, OPEN_TIMEOUT);
    fetch(this.url, {
      method: "POST",
      body: JSON.stringify({ streams: streams }),
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      credentials: "same-origin",
      cache: "no-store",
      signal: attempt.controller.signal,
    })
      .then(function (response) {
        if (!response.ok || !response.body) {
          return Promise.reject({ status: response.status, retry: response.headers.get("Retry-After") });
        }
        return readEvents(response.body, function (event) {
          self.handle(attempt, event);
        });
      })
      .then(
        function () {
          clearTimeout(timeout);
          self.failed(attempt, {});
        },
        function (error) {
          clearTimeout(timeout);
          self.failed(attempt, error || {});
        }
      );
  };

  Connection.prototype.handle = function (attempt, event) {
    if (attempt !== this.current && attempt !== this.next) {
      return; // replaced: the connection after it resumes from here
    }
    if (event.type === "reactive-channel") {
      if (attempt === this.next) {
        var replaced = this.current;
        this.current = attempt;
        this.next = null;
        replaced.controller.abort();
      }
      var key = (attempt.channel = attempt.keys[Number(event.data)]);
      var stream = this.streams[key];
      if (stream && stream.live !== attempt) {
        stream.live = attempt;
        stream.failures = 0;
        this.failures = 0;
        this.listener.state(key, "live");
      }
    } else if (event.type === "reactive-refused") {
      this.refused(attempt.keys, event.data.split(" "));
    } else if (attempt === this.current && this.streams[attempt.channel]) {
      var moving = this.next && this.next.keys.indexOf(attempt.channel) >= 0;
      if (moving && event.type === this.streams[attempt.channel].close) {
        return; // the next connection took the stream over: it is not ended
      }
      this.received(attempt.channel, event);
    }
  };

  Connection.prototype.received = function (key, event) {
    var stream = this.streams[key];
    if (event.id !== null) {
      stream.last = event.id;
    }
    if (event.type === stream.close) {
      delete this.streams[key];
      this.listener.state(key, "ended");
    } else if (event.type === RECONNECT_EVENT) {
      this.openIn(Math.random() * SOON); // its lifetime is over
    } else {
      this.listener.event(key, event.type, event.data);
    }
  };

  Connection.prototype.refused = function (keys, fields) {
    var key = keys[Number(fields[0])];
    var status = Number(fields[1]);
    var stream = this.streams[key];
    if (!stream) {
      return;
    }
    if (REFUSED[status]) {
      delete this.streams[key];
      this.listener.state(key, "refused", status);
    } else {
      // Too many streams (429) or a server error: try again later, later each
      // time it happens again.
      stream.failures += 1;
      this.listener.state(key, "reconnecting", status);
      this.openIn(this.backoff(fields[2], stream.failures));
    }
  };

  Connection.prototype.failed = function (attempt, error) {
    if (attempt.controller.signal.aborted && !attempt.late) {
      return; // replaced on purpose
    }
    var self = this;
    if (attempt === this.next) {
      this.next = null; // the current one goes on; try again later
      this.failures += 1;
      this.openIn(this.backoff(error.retry));
      return;
    }
    if (attempt !== this.current) {
      return;
    }
    this.current = null;
    var keys = this.keys();
    if (CONNECTION_REFUSED[error.status]) {
      // A request the server will never take: say so, do not retry.
      if (typeof console !== "undefined") {
        console.error("reactive_blocks: the streams' connection was refused (" + error.status + ").");
      }
      keys.forEach(function (key) {
        delete self.streams[key];
        self.listener.state(key, "refused", error.status);
      });
      return;
    }
    var offline = typeof navigator !== "undefined" && navigator.onLine === false;
    keys.forEach(function (key) {
      self.streams[key].live = null;
      self.listener.state(key, offline ? "offline" : "reconnecting", error.status || "network");
    });
    if (keys.length) {
      this.failures += 1;
      this.openIn(this.backoff(error.retry));
    }
  };

  // The wait before the next attempt: a random part of a window that doubles
  // with the failures in a row (of the connection or of one stream, whichever
  // is more), and never less than what the server asked (Retry-After).
  Connection.prototype.backoff = function (retryAfter, failures) {
    var count = Math.max(failures || 0, this.failures);
    var span = Math.min(MAX_WINDOW, FIRST_WINDOW * Math.pow(2, Math.max(0, count - 1)));
    var delay = MIN_DELAY + Math.random() * span;
    var seconds = Number(retryAfter);
    return seconds > 0 ? Math.max(delay, seconds * 1000 + Math.random() * SOON) : delay;
  };

  Connection.prototype.online = function () {
    if (this.timer !== null) {
      this.openIn(Math.random() * SOON);
    }
  };

  // Server-Sent Events from a fetch body, as EventSource reads them (our server
  // ends lines with \n): calls onEvent({type, data, id}) per event with data.
  function readEvents(body, onEvent) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    var event = { type: "", data: [], id: null };

    function line(text) {
      if (text.charAt(text.length - 1) === "\r") {
        text = text.slice(0, -1);
      }
      if (text === "") {
        if (event.data.length) {
          onEvent({ type: event.type || "message", data: event.data.join("\n"), id: event.id });
        }
        event = { type: "", data: [], id: null };
        return;
      }
      if (text.charAt(0) === ":") {
        return;
      }
      var colon = text.indexOf(":");
      var field = colon < 0 ? text : text.slice(0, colon);
      var value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.charAt(0) === " ") {
        value = value.slice(1);
      }
      if (field === "event") {
        event.type = value;
      } else if (field === "data") {
        event.data.push(value);
      } else if (field === "id") {
        event.id = value;
      }
    }

    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          return;
        }
        buffer += decoder.decode(chunk.value, { stream: true });
        var lines = buffer.split("\n");
        buffer = lines.pop();
        lines.forEach(line);
        return pump();
      });
    }
    return pump();
  }

  if (!IN_PAGE) {
    serveTabs();
  } else {
    servePage();
  }

  // In the SharedWorker: one connection for every tab; each tab says which
  // streams it wants and gets their events back. A tab holds a lock named after
  // it for as long as it lives; the worker waits for that lock to know it left.
  function serveTabs() {
    var pool = null;
    var tabs = {}; // tab -> {keys}
    var owners = {}; // stream key -> {port, tab}
    var locked = {}; // tabs whose lock is waited for
    var listener = {
      event: function (key, name, data) {
        if (owners[key]) {
          owners[key].port.postMessage({ key: key, name: name, data: data });
        }
      },
      state: function (key, state, detail) {
        var owner = owners[key];
        if (owner) {
          owner.port.postMessage({ key: key, state: state, detail: detail });
          if (state === "ended" || state === "refused") {
            forgetKey(key); // the connection has dropped it already
          }
        }
      },
    };

    function forgetKey(key) {
      var owner = owners[key];
      delete owners[key];
      if (owner && tabs[owner.tab]) {
        delete tabs[owner.tab].keys[key];
      }
    }

    function forget(tab) {
      var known = tabs[tab];
      delete tabs[tab];
      if (known && pool) {
        Object.keys(known.keys).forEach(function (key) {
          delete owners[key];
          pool.remove(key);
        });
      }
    }

    self.addEventListener("online", function () {
      if (pool) {
        pool.online();
      }
    });
    self.addEventListener("connect", function (event) {
      var port = event.ports[0];
      port.addEventListener("message", function (message) {
        var data = message.data || {};
        if (data.type === "hello") {
          pool = pool || new Pool(data.streams, listener);
          tabs[data.tab] = tabs[data.tab] || { keys: {} };
          if (self.navigator && self.navigator.locks && !locked[data.tab]) {
            locked[data.tab] = true;
            self.navigator.locks.request("reactive_blocks:" + data.tab, function () {
              delete locked[data.tab];
              forget(data.tab);
            });
          }
        } else if (data.type === "add" && tabs[data.tab]) {
          tabs[data.tab].keys[data.key] = true;
          owners[data.key] = { port: port, tab: data.tab };
          pool.add(data.key, data.url, data.close);
        } else if (data.type === "remove" && owners[data.key]) {
          forgetKey(data.key);
          pool.remove(data.key);
        } else if (data.type === "bye") {
          forget(data.tab);
        }
      });
      port.start();
    });
  }

  function servePage() {
    var script = document.currentScript;
    var streamsUrl = (script && script.getAttribute("data-streams")) || "/_reactive/streams/";
    var tab = Math.random().toString(36).slice(2) + Date.now().toString(36);
    var elements = {}; // stream key -> connected element
    var counter = 0;
    var transport = null;

    var listener = {
      event: function (key, name, data) {
        var element = elements[key];
        if (!element) {
          return;
        }
        if (name === RELOAD_EVENT) {
          reloadBlock(element, data);
        } else if (name === ROWS_EVENT) {
          applyRows(element, JSON.parse(data));
        } else {
          swapBlocks(element, name, data);
        }
      },
      state: function (key, state, detail) {
        var element = elements[key];
        if (!element) {
          return;
        }
        if (state === "refused") {
          element.setAttribute("data-reactive-stale", String(detail));
          element.dispatchEvent(new CustomEvent("reactive:stale", { bubbles: true, detail: { status: detail } }));
        }
        setState(element, state);
        if (state === "live") {
          element.dispatchEvent(new CustomEvent("htmx:sseOpen", { bubbles: true, detail: { elt: element } }));
        }
      },
    };

    // The SharedWorker, if the browser has one and the script may run as one
    // (same origin); else a connection of this tab's own.
    function openTransport() {
      var shared = script && script.getAttribute("data-shared") !== "false";
      if (shared && window.SharedWorker && window.reactiveBlocksShared !== false) {
        try {
          var worker = new SharedWorker(script.src, { name: "reactive_blocks " + streamsUrl });
          var port = worker.port;
          port.addEventListener("message", function (message) {
            var data = message.data;
            if (data.state) {
              listener.state(data.key, data.state, data.detail);
            } else {
              listener.event(data.key, data.name, data.data);
            }
          });
          port.start();
          // The worker learns of the tab once the tab holds its lock (else the
          // worker could take the lock first and think the tab gone).
          var queued = [];
          var send = function (message) {
            if (queued) {
              queued.push(message);
            } else {
              port.postMessage(message);
            }
          };
          var hello = function () {
            port.postMessage({ type: "hello", tab: tab, streams: streamsUrl });
            queued.forEach(function (message) {
              port.postMessage(message);
            });
            queued = null;
          };
          if (navigator.locks) {
            navigator.locks.request("reactive_blocks:" + tab, function () {
              hello();
              return new Promise(function () {}); // held while the tab lives
            });
          } else {
            hello();
          }
          worker.addEventListener("error", function () {
            transport = ownConnection(); // the worker could not start: go alone
            Object.keys(elements).forEach(add);
          });
          window.addEventListener("pagehide", function () {
            send({ type: "bye", tab: tab });
          });
          window.addEventListener("pageshow", function (event) {
            if (event.persisted) {
              send({ type: "hello", tab: tab, streams: streamsUrl });
              Object.keys(elements).forEach(add);
            }
          });
          return {
            add: function (key, url, close) {
              send({ type: "add", tab: tab, key: key, url: url, close: close });
            },
            remove: function (key) {
              send({ type: "remove", key: key });
            },
          };
        } catch (error) {
          // fall through: a connection of this tab's own
        }
      }
      return ownConnection();
    }

    function ownConnection() {
      var pool = new Pool(streamsUrl, listener);
      window.addEventListener("online", function () {
        pool.online();
      });
      return pool;
    }

    function add(key) {
      var element = elements[key];
      transport.add(
        key,
        element.getAttribute("data-reactive-stream"),
        element.getAttribute("data-reactive-close") || CLOSE_EVENT
      );
    }

    function scan() {
      document.querySelectorAll("[data-reactive-stream]").forEach(function (element) {
        if (element.reactiveKey) {
          return;
        }
        var key = (element.reactiveKey = tab + ":" + counter++);
        elements[key] = element;
        transport = transport || openTransport();
        add(key);
      });
    }

    // A connected element that leaves the page (an htmx swap, a boosted link)
    // ends its stream; one that arrives opens its own.
    function sweep() {
      sweeping = false;
      Object.keys(elements).forEach(function (key) {
        if (!document.documentElement.contains(elements[key])) {
          delete elements[key];
          transport.remove(key);
        }
      });
    }
    var sweeping = false;
    new MutationObserver(function (mutations) {
      var removed = mutations.some(function (mutation) {
        return mutation.removedNodes.length > 0;
      });
      if (removed && transport && !sweeping) {
        sweeping = true;
        setTimeout(sweep, 0);
      }
    }).observe(document.documentElement, { childList: true, subtree: true });

    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", scan);
    } else {
      scan();
    }
    document.addEventListener("htmx:load", scan);
  }

  // The connected element says how its stream is doing, for indicators and CSS:
  // data-reactive-state is "connecting", "live", "reconnecting", "offline"
  // (the browser lost the network), "ended" (the server closed it for good) or
  // "refused" (403/404: the page must be reloaded), and a reactive:state event
  // tells it too.
  function setState(element, state) {
    if (element.getAttribute("data-reactive-state") === state) {
      return;
    }
    element.setAttribute("data-reactive-state", state);
    element.dispatchEvent(new CustomEvent("reactive:state", { bubbles: true, detail: { state: state } }));
  }

  // The elements of ``root`` (not of a stream nested in it) whose sse-swap names
  // ``name``; htmx writes several names with commas.
  function targetsOf(root, name) {
    var found = [];
    var candidates = [root].concat(Array.prototype.slice.call(root.querySelectorAll("[sse-swap],[data-sse-swap]")));
    candidates.forEach(function (element) {
      var names = element.getAttribute("sse-swap") || element.getAttribute("data-sse-swap");
      if (
        names &&
        names.split(/[\s,]+/).indexOf(name) >= 0 &&
        element.closest("[data-reactive-stream]") === root
      ) {
        found.push(element);
      }
    });
    return found;
  }

  // Swapped blocks are morphed into the page (idiomorph) instead of replaced:
  // what the user is doing inside one survives an update. The focused field keeps
  // its focus, caret and text (while it has focus its text wins over the
  // server's), an open <details> stays open, scrolled elements keep their place;
  // everything else updates. An sse-swap element with an hx-swap of its own is
  // swapped by htmx that way instead.
  //
  // A form the user is filling in keeps what they typed in every field they
  // changed (not only the focused one), and its hidden fields keep the values
  // the form was opened with (a version number: a save then says what it was
  // based on), until the form is replaced by a new one (after a save) or the
  // page is reloaded.
  var edited = typeof WeakSet === "function" ? new WeakSet() : null;

  function isField(node) {
    return node.nodeType === 1 && /^(INPUT|TEXTAREA|SELECT)$/.test(node.tagName);
  }

  function keeps(node) {
    if (!edited || !isField(node)) {
      return false;
    }
    if (edited.has(node)) {
      return true;
    }
    var form = node.type === "hidden" && node.form;
    return Boolean(form) && Array.prototype.some.call(form.elements, function (field) {
      return edited.has(field);
    });
  }

  if (IN_PAGE && edited) {
    ["input", "change"].forEach(function (kind) {
      document.addEventListener(
        kind,
        function (event) {
          if (isField(event.target) && event.target.closest("[data-reactive-stream]")) {
            edited.add(event.target);
          }
        },
        true
      );
    });
  }

  var MORPH = {
    morphStyle: "innerHTML",
    ignoreActiveValue: true,
    restoreFocus: true,
    callbacks: {
      beforeAttributeUpdated: function (name, node) {
        return !(name === "open" && node.tagName === "DETAILS");
      },
      beforeNodeMorphed: function (node) {
        return !keeps(node);
      },
    },
  };
  var ROW_MORPH = Object.assign({}, MORPH, { morphStyle: "outerHTML" });

  // htmx 2 swaps the block (its events fire, its attributes in the new content
  // work): with "reactive-morph", the extension below, unless the sse-swap
  // element says otherwise with an hx-swap of its own. With another htmx (1.9,
  // whose swap is not public; 4, whose extensions and swap differ) or none, the
  // block is morphed here (or replaced, for hx-swap="innerHTML") and handed to
  // htmx.process().
  var HTMX2 = IN_PAGE && window.htmx && window.htmx.swap && window.htmx.defineExtension;

  function swapBlocks(root, name, html) {
    targetsOf(root, name).forEach(function (target) {
      var style = (target.getAttribute("hx-swap") || "reactive-morph").split(/\s+/)[0];
      if (HTMX2) {
        // The context element is where htmx looks for extensions (hx-ext).
        window.htmx.swap(target, html, { swapStyle: style }, { contextElement: target });
      } else {
        var template = document.createElement("template");
        template.innerHTML = html;
        if (style === "innerHTML") {
          target.replaceChildren(template.content);
        } else {
          morph(target, template.content);
        }
        if (window.htmx && window.htmx.process) {
          window.htmx.process(target);
        }
      }
      target.dispatchEvent(
        new CustomEvent("htmx:sseMessage", { bubbles: true, detail: { elt: target, type: name, data: html } })
      );
    });
  }

  // A keyed block's rows (rows/patch.py): remove some, then, in the new order,
  // morph each changed row in place and move or insert the rows that moved or
  // are new, after the row they now follow (or before the first unmoved one).
  // A row that is not where the message expects it means the page went its own
  // way: the block is fetched whole instead.
  function applyRows(root, patch) {
    targetsOf(root, patch.block).forEach(function (target) {
      var find = function (id) {
        return target.querySelector("#" + CSS.escape(id));
      };
      var lost = false;
      (patch.remove || []).forEach(function (id) {
        var row = find(id);
        if (row) {
          row.remove();
        }
      });
      (patch.put || []).forEach(function (put) {
        var row = find(put.id);
        if (put.html !== undefined) {
          var template = document.createElement("template");
          template.innerHTML = put.html;
          var fresh = template.content.firstElementChild;
          if (row && window.Idiomorph) {
            window.Idiomorph.morph(row, fresh, ROW_MORPH);
            row = find(put.id); // the element itself, if the morph replaced it
          } else if (row) {
            row.replaceWith(fresh);
            row = fresh;
          } else if (put.after || put.before) {
            row = fresh; // new: placed below
          }
        }
        var anchor = put.after || put.before;
        var place = anchor && find(anchor);
        if (!row || (anchor && !place)) {
          lost = true; // a row to change or an anchor is not on the page
          return;
        }
        if (put.after) {
          place.after(row);
        } else if (put.before) {
          place.before(row);
        }
        if (window.htmx && window.htmx.process) {
          window.htmx.process(row);
        }
      });
      if (lost) {
        console.warn("reactive_blocks: the rows of block " + patch.block + " did not match the page; it is fetched whole.");
        reloadBlock(root, patch.block);
      }
      target.dispatchEvent(
        new CustomEvent("htmx:sseMessage", { bubbles: true, detail: { elt: target, type: patch.block, rows: patch } })
      );
    });
  }

  function morph(target, fragment) {
    // childNodes, not children: a block's text is content too. A block of text
    // alone has nothing to keep, and idiomorph leaves an element alone when
    // given no element: it is replaced.
    var nodes = Array.prototype.slice.call(fragment.childNodes);
    if (!window.Idiomorph || fragment.children.length === 0) {
      target.replaceChildren.apply(target, nodes);
    } else {
      window.Idiomorph.morph(target, nodes, MORPH);
    }
  }

  // A block too large to stream (MAX_FRAGMENT_BYTES) arrives as its name only:
  // fetch the page over a normal request and swap those blocks' content from it,
  // into the same elements, as the stream would have. The names of one burst
  // share one fetch, after a random delay of up to a second, so a thousand
  // viewers do not ask for the page at the same instant.
  var reloading = null;

  function reloadBlock(root, name) {
    if (!reloading) {
      reloading = { root: root, names: {} };
      setTimeout(fetchBlocks, Math.random() * 1000);
    }
    reloading.names[name] = true;
  }

  function fetchBlocks() {
    var root = reloading.root;
    var names = Object.keys(reloading.names);
    reloading = null;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : Promise.reject(response.status);
      })
      .then(function (text) {
        var page = new DOMParser().parseFromString(text, "text/html");
        var connected = "[data-reactive-stream]";
        var place = Array.prototype.indexOf.call(document.querySelectorAll(connected), root);
        var fresh = page.querySelectorAll(connected)[place] || page.body;
        names.forEach(function (name) {
          var source = targetsOf(fresh, name)[0];
          if (source && document.body.contains(root)) {
            swapBlocks(root, name, source.innerHTML);
          }
        });
      })
      .catch(function () {
        // The next change of the block, or a reload of the page, shows it.
      });
  }

  if (HTMX2) {
    window.htmx.defineExtension("reactive-morph", {
      handleSwap: function (style, target, fragment) {
        if (style !== "reactive-morph") {
          return false;
        }
        morph(target, fragment);
        // Handed back, the elements get their htmx behaviour (hx-post...) as
        // any swapped content does.
        return Array.prototype.slice.call(target.children);
      },
    });
  }
})();
