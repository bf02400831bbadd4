/*! Goalkeeper tracker 1.0.0 */
// The page tag: <script async src="API/v1/tracker.js" data-key="gk_site_..."></script>.
// Served as is minus comment lines and indentation (goalkeeper/tracker.py), so: whole-line
// `//` comments only, no block comments but the banner, no template literals.
(function () {
  "use strict";
  var page = window, doc = document, nav = navigator;
  var script = doc.currentScript;
  // Loaded twice (two tags), the first one keeps tracking: one page view, not two.
  if (!script || (page.goalkeeper && page.goalkeeper.loaded)) return;
  var API = script.src.replace(/\/v1\/tracker\.js([?#].*)?$/, "");
  var KEY = script.getAttribute("data-key") || "";
  if (!KEY) console.warn("goalkeeper: the tag has no data-key; nothing is sent");
  var VISIT_MS = 30 * 60 * 1000;
  // Events that could not be delivered wait here for the next page, the oldest dropped first.
  var QUEUE_MAX = 50;
  // What the server reads off a page view's URL (goalkeeper/traffic_sources.py; a test keeps
  // the two alike): campaign parameters, and click ids in order, Google's and Microsoft's
  // implying a paid click of theirs.
  var CAMPAIGN = { utm_source: "source", utm_medium: "medium", utm_campaign: "campaign", utm_term: "keyword" };
  var CLICK_IDS = [["gclid", "google"], ["gbraid", "google"], ["wbraid", "google"], ["msclkid", "bing"], ["fbclid"], ["ttclid"], ["li_fat_id"]];
  var inFlight = {};
  var memoryQueue = [];
  var lastUrl = null;

  // First-party storage: localStorage, else a cookie of the site (Safari's private mode,
  // storage disabled). Names start gk_ so a site can list them in its cookie policy.
  function read(name) {
    try {
      return localStorage.getItem(name);
    } catch (e) {
      var found = doc.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      return found ? decodeURIComponent(found[1]) : null;
    }
  }
  function write(name, value) {
    try {
      if (value === null) localStorage.removeItem(name);
      else localStorage.setItem(name, value);
    } catch (e) {
      // Kept two years, as browsers keep localStorage until it is cleared.
      doc.cookie = name + "=" + encodeURIComponent(value || "") + "; path=/; SameSite=Lax; max-age=" + (value === null ? 0 : 63072000);
    }
  }

  // At most `max` characters, never half of one (slice counts UTF-16 units: an emoji is two).
  function cut(text, max) {
    return Array.from(text).slice(0, max).join("");
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID exists only on https (and localhost); getRandomValues everywhere.
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }

  function respectsPrivacySignal() {
    return script.getAttribute("data-respect-dnt") !== "false" && (nav.doNotTrack === "1" || nav.globalPrivacyControl === true);
  }
  function allowed() {
    return !!KEY && read("gk_off") !== "1" && !respectsPrivacySignal();
  }

  // The landing's campaign parameters and click id, named as the API names them.
  function attributionOf(url) {
    var params = new URL(url).searchParams, found = {}, any = false;
    params.forEach(function (value, name) {
      var field = CAMPAIGN[name.toLowerCase()];
      value = value.trim();
      if (field && value && !found[field]) {
        found[field] = cut(value, 256);
        any = true;
      }
    });
    for (var i = 0; i < CLICK_IDS.length; i++) {
      var click = params.get(CLICK_IDS[i][0]);
      if (click) {
        found.click_id = cut(click, 256);
        if (CLICK_IDS[i][1] && !found.source) {
          found.source = CLICK_IDS[i][1];
          found.medium = found.medium || "cpc";
        }
        any = true;
        break;
      }
    }
    return any ? found : null;
  }

  // The visit: 30 minutes without an event ends it. Its attribution is the first touch of
  // the visit, sent with each of its events.
  function visit() {
    var now = Date.now(), current = null;
    try {
      current = JSON.parse(read("gk_visit"));
    } catch (e) {}
    if (!current || now - current.at > VISIT_MS) {
      current = { id: uuid(), a: attributionOf(location.href) };
    }
    current.at = now;
    write("gk_visit", JSON.stringify(current));
    return current;
  }

  function visitorId() {
    var id = read("gk_vid");
    if (!id) write("gk_vid", (id = uuid()));
    return id;
  }

  function loadQueue() {
    try {
      return JSON.parse(localStorage.getItem("gk_q")) || [];
    } catch (e) {
      return memoryQueue;
    }
  }
  function saveQueue(queue) {
    memoryQueue = queue.slice(-QUEUE_MAX);
    try {
      localStorage.setItem("gk_q", JSON.stringify(memoryQueue));
    } catch (e) {}
  }
  function forget(eventId) {
    delete inFlight[eventId];
    saveQueue(loadQueue().filter(function (queued) { return queued.event_id !== eventId; }));
  }

  // Every event waits in the queue until the API has answered it. fetch with keepalive, like
  // sendBeacon, outlives the page and sends text/plain (no CORS preflight), but unlike
  // sendBeacon it says whether the event arrived. 2xx: stored (or already stored);
  // another 4xx: sending it again gets the same answer. 429, 5xx or no answer: kept.
  function deliver(event) {
    if (inFlight[event.event_id]) return;
    inFlight[event.event_id] = true;
    fetch(API + "/v1/events?key=" + encodeURIComponent(KEY), {
      method: "POST",
      body: JSON.stringify(event),
      headers: { "content-type": "text/plain" },
      keepalive: true,
      credentials: "omit"
    }).then(function (response) {
      if (response.ok) return forget(event.event_id);
      var refused = response.status >= 400 && response.status < 500 && response.status !== 429;
      if (!refused) throw response;
      // Said in the console, for the site's developers, before it is dropped.
      return response.text().then(function (text) {
        console.warn("goalkeeper: event refused (" + response.status + "): " + text);
        forget(event.event_id);
      });
    }).catch(function () {
      delete inFlight[event.event_id];
    });
  }
  function flush() {
    if (allowed()) loadQueue().forEach(deliver);
  }

  function send(type, fields) {
    if (!allowed()) return;
    var current = visit();
    var event = { event_id: uuid(), type: type, occurred_at: new Date().toISOString(), visitor_id: visitorId(), visit_id: current.id };
    var contact = read("gk_cid");
    if (contact) event.contact_id = contact;
    if (current.a) event.attribution = current.a;
    for (var name in fields) {
      if (fields[name] !== undefined && fields[name] !== null && fields[name] !== "") event[name] = fields[name];
    }
    var queue = loadQueue();
    queue.push(event);
    saveQueue(queue);
    deliver(event);
  }

  function pageView(referrer) {
    var url = location.href.split("#")[0];
    if (url === lastUrl || !allowed()) return;
    lastUrl = url;
    send("page_view", { url: cut(url, 2048), title: cut(doc.title, 256), referrer: cut(referrer, 2048) });
  }

  var commands = {
    trigger: function (name, fields, transaction) {
      send("custom_trigger", { name: name, fields: fields, transaction: transaction });
    },
    transaction: function (transaction) {
      send("transaction", { transaction: transaction });
    },
    lead: function (leadId) {
      send("lead", { lead_id: String(leadId) });
    },
    identify: function (contactId) {
      if (allowed()) write("gk_cid", String(contactId));
    },
    // Anything but true refuses: nothing more is sent, from any page, until consent is given;
    // the ids and the waiting events are erased. Only the refusal itself is remembered.
    consent: function (given) {
      if (given === true) {
        write("gk_off", null);
        // The page view a refusal held back (none when this page was already counted).
        pageView(doc.referrer);
        return;
      }
      ["gk_vid", "gk_visit", "gk_cid", "gk_q"].forEach(function (name) { write(name, null); });
      memoryQueue = [];
      write("gk_off", "1");
    }
  };
  function goalkeeper(command) {
    if (commands[command]) commands[command].apply(null, [].slice.call(arguments, 1));
    else console.warn("goalkeeper: unknown command " + command);
  }
  goalkeeper.loaded = true;

  // Single-page applications change the URL with the History API; each new URL is a page
  // view, referred by the one before (a step of the visit, not a new way in). A replaceState
  // that keeps the path is the page keeping its own state in the query (a search box as the
  // visitor types, filters, campaign parameters stripped): not a new page.
  ["pushState", "replaceState"].forEach(function (method) {
    var original = history[method];
    history[method] = function () {
      var before = location.href, path = location.pathname;
      var result = original.apply(this, arguments);
      if (method === "pushState" || location.pathname !== path) pageView(before);
      return result;
    };
  });
  page.addEventListener("popstate", function () { pageView(lastUrl || ""); });
  // A page restored from the back-forward cache runs no script again, yet it is viewed again.
  page.addEventListener("pageshow", function (shown) {
    if (!shown.persisted) return;
    lastUrl = null;
    flush();
    pageView(doc.referrer);
  });
  page.addEventListener("online", flush);

  // Dynamic number insertion: data-number="+442071234567" names the site's own number. While
  // the page is open it shows the pool number the visit holds instead (text and tel: links,
  // each written as the page wrote it), renewed halfway through each hold; an exhausted pool
  // answers the site's own number, shown again.
  var OWN = script.getAttribute("data-number"), shown = OWN;
  var PHONE = /\+?\d[\d\s().\/-]{5,}\d/g;
  function digits(text) {
    return text.replace(/\D/g, "");
  }
  // The digits a written number dials from abroad, less its country code: no trunk zero,
  // whether leading ("020 7946 0000") or bracketed ("+44 (0)20 7946 0000").
  function dialled(text) {
    return digits(text.replace("(0)", "")).replace(/^0+/, "");
  }
  // The same number when those end the number's digits (a country code is at most 3).
  function same(text, number) {
    var found = dialled(text), full = digits(number);
    return found.length > 5 && found.length >= full.length - 3 && full.slice(-found.length) === found;
  }
  // The new number in the old one's place, digit by digit from the right.
  function rewrite(text, number) {
    var next = digits(number), j = next.length, left = dialled(text).length, out = "";
    text = text.replace("(0)", "(o)");
    for (var i = text.length - 1; i >= 0; i--) {
      var c = text.charAt(i);
      if (left > 0 && /\d/.test(c)) {
        c = next.charAt(--j);
        left--;
      }
      out = c + out;
    }
    return out.replace("(o)", "(0)");
  }
  function swap(number) {
    var walker = doc.createTreeWalker(doc.body, 4), node;
    while ((node = walker.nextNode())) {
      node.nodeValue = node.nodeValue.replace(PHONE, function (text) {
        return same(text, shown) ? rewrite(text, number) : text;
      });
    }
    doc.querySelectorAll('a[href^="tel:"]').forEach(function (link) {
      if (same(link.getAttribute("href").slice(4), shown)) link.setAttribute("href", "tel:" + number);
    });
    shown = number;
  }
  function holdNumber(current) {
    if (!allowed()) return;
    var ask = { visitor_id: visitorId(), visit_id: current.id, replaces: OWN };
    if (current.a) ask.attribution = current.a;
    fetch(API + "/v1/numbers/assign?key=" + encodeURIComponent(KEY), {
      method: "POST",
      body: JSON.stringify(ask),
      headers: { "content-type": "text/plain" },
      credentials: "omit"
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (held) {
      if (!held) return;
      if (held.number !== shown) swap(held.number);
      if (held.pooled) setTimeout(holdNumber, Math.max(10000, (Date.parse(held.held_until) - Date.now()) / 2), current);
    }).catch(function () {});
  }

  var early = (page.goalkeeper && page.goalkeeper.q) || [];
  page.goalkeeper = goalkeeper;
  for (var i = 0; i < early.length; i++) goalkeeper.apply(null, early[i]);
  flush();
  pageView(doc.referrer);
  if (OWN) {
    var start = function () { holdNumber(visit()); };
    if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", start);
    else start();
  }
})();
