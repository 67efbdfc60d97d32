// floorstream web feed: live posts by server-sent events, nothing else. No build step.
// EventSource reconnects by itself and sends Last-Event-ID, so a reconnect misses nothing.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function fillTokens(root) {
    root.querySelectorAll('input[name="csrf"]').forEach(function (input) {
      if (!input.value) { input.value = csrf; }
    });
  }

  // times: on the plant's clock (display.timezone, the clock of the posts' summaries; the
  // page's data-zone), named, as the server writes them; here for acks, the clock and the bar
  var zone = document.documentElement.dataset.zone || "UTC";
  var stamp;
  try {
    // en-GB: zone abbreviations ("CET"; en-US says "GMT+1"); its "Sept" is cut to three letters
    stamp = new Intl.DateTimeFormat("en-GB", {day: "2-digit", month: "short", year: "numeric",
                                              hour: "2-digit", minute: "2-digit",
                                              second: "2-digit", hourCycle: "h23",
                                              timeZoneName: "short", timeZone: zone});
  } catch (e) {
    zone = "UTC";
    stamp = new Intl.DateTimeFormat("en-GB", {day: "2-digit", month: "short", year: "numeric",
                                              hour: "2-digit", minute: "2-digit",
                                              second: "2-digit", hourCycle: "h23",
                                              timeZoneName: "short", timeZone: "UTC"});
  }
  function parts(at) {
    var found = {};
    stamp.formatToParts(at).forEach(function (p) { found[p.type] = p.value; });
    return found;
  }
  var thisYear = parts(new Date()).year;
  function when(iso) {
    var p = parts(new Date(iso));
    // the year only when it is not this one (an ASN from last year must not read as today's)
    return p.day + " " + p.month.slice(0, 3) + (p.year === thisYear ? "" : " " + p.year) +
      " " + p.hour + ":" + p.minute + ":" + p.second + " " + p.timeZoneName;
  }

  // the filter's from/to: UTC on the server (and without this script, which the label then
  // says); here wall-clock times on the plant's clock, like the posts, sent as UTC instants
  var months = {Jan: 1, Feb: 2, Mar: 3, Apr: 4, May: 5, Jun: 6, Jul: 7, Aug: 8, Sep: 9,
                Oct: 10, Nov: 11, Dec: 12};
  function pad(n) { return String(n).padStart(2, "0"); }
  function wallClock(ms) {  // a UTC instant → "YYYY-MM-DDTHH:MM" on the plant's clock
    var p = parts(new Date(ms));
    return p.year + "-" + pad(months[p.month.slice(0, 3)]) + "-" + p.day + "T" + p.hour + ":" +
      p.minute;
  }
  function instant(wall) {  // "YYYY-MM-DDTHH:MM" on the plant's clock → a UTC instant (ms)
    var guess = Date.parse(wall + "Z");
    var at = guess - (Date.parse(wallClock(guess) + "Z") - guess);
    return guess - (Date.parse(wallClock(at) + "Z") - at);  // again, across a DST change
  }
  document.querySelectorAll("form.filters").forEach(function (form) {
    var inputs = form.querySelectorAll('input[type="datetime-local"]');
    form.querySelectorAll("abbr.zone").forEach(function (abbr) {
      abbr.textContent = parts(new Date()).timeZoneName;
      abbr.title = "times on the plant's clock, " + zone;
    });
    inputs.forEach(function (input) {
      var utc = Date.parse(input.value.slice(0, 16) + "Z");
      if (input.value && !isNaN(utc)) { input.value = wallClock(utc); }
    });
    form.addEventListener("submit", function () {
      // blank fields stay out of the address (a shorter link to share; the server takes
      // them as no filter either way)
      form.querySelectorAll("input[name], select[name]").forEach(function (field) {
        if (!field.value && field.type !== "hidden") { field.disabled = true; }
      });
      inputs.forEach(function (input) {
        if (!input.value || isNaN(Date.parse(input.value.slice(0, 16) + "Z"))) { return; }
        var sent = document.createElement("input");
        sent.type = "hidden";
        sent.name = input.name;
        sent.value = new Date(instant(input.value.slice(0, 16))).toISOString();
        input.disabled = true;  // the UTC copy goes instead
        form.appendChild(sent);
      });
    });
    // back to this page from the browser's cache: the fields typed in again
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("input[name], select[name]").forEach(function (field) {
        field.disabled = false;
      });
      form.querySelectorAll('input[type="hidden"][name="since"], input[type="hidden"][name="until"]')
        .forEach(function (sent) { sent.remove(); });
    });
  });

  var posts = document.getElementById("posts");
  fillTokens(document);
  if (!posts || !posts.dataset.live || !window.EventSource) { return; }
  var threadPage = posts.dataset.thread === "1";
  var kiosk = posts.dataset.kiosk === "1";
  var state = document.getElementById("live-state");
  // new posts are announced to screen readers in one short line, not as a whole article
  var announce = document.createElement("p");
  announce.className = "visually-hidden";
  announce.setAttribute("aria-live", "polite");
  announce.id = "announce";
  document.body.appendChild(announce);

  function showState(text) {
    if (!state) { return; }
    state.hidden = !text;
    state.textContent = text || "";
  }

  // EventSource reconnects by itself (sending Last-Event-ID); when the server refused it
  // (restarting behind a proxy: 502) it gives up, so the page opens a new one from the last
  // post it saw, after a growing pause, and says meanwhile that it is not live
  var lastSeq = null;
  var source = null;
  var retryIn = 1000;
  var dropped = null;

  function streamUrl() {
    var url = new URL(posts.dataset.live, window.location.href);
    if (lastSeq !== null) { url.searchParams.set("after", lastSeq); }
    return url.toString();
  }

  function connect() {
    source = new EventSource(streamUrl());
    source.onopen = function () {
      document.body.dataset.live = "open";
      retryIn = 1000;
      dropped = null;
      showState("");
    };
    source.onerror = function () {
      document.body.dataset.live = "reconnecting";
      if (dropped === null) { dropped = new Date(); }
      showState("Not live since " + when(dropped.toISOString()) +
                ": reconnecting. Posts from meanwhile will appear when it is back.");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, retryIn);
        retryIn = Math.min(retryIn * 2, 30000);
      }
    };
    source.addEventListener("post", onPost);
    source.addEventListener("more", onMore);
    source.addEventListener("ack", onAck);
  }

  function remember(event) {
    if (/^[0-9]+$/.test(event.lastEventId || "")) { lastSeq = event.lastEventId; }
  }

  function onPost(event) {
    remember(event);
    var data = JSON.parse(event.data);
    if (document.getElementById("post-" + data.id)) { return; }
    var holder = document.createElement("div");
    holder.innerHTML = data.html;  // rendered and escaped by the server's templates
    var article = holder.firstElementChild;
    fillTokens(article);
    var sev = article.querySelector(".sev");
    var summary = article.querySelector(".summary");
    announce.textContent = "New post: " + (sev ? sev.textContent.replace(/[^a-z]/gi, "") + ", " : "") +
      (summary ? summary.textContent.trim() : "");
    article.classList.add("fresh");
    var empty = document.getElementById("empty");
    if (empty) { empty.remove(); }
    var reply = data.activity && data.activity.inReplyTo;
    var parentId = reply ? reply.split(":").pop() : null;
    var parent = threadPage && parentId ? document.getElementById("post-" + parentId) : null;
    if (parent) {
      var node = parent.parentElement;
      var replies = node.querySelector(":scope > .replies");
      if (!replies) {
        replies = document.createElement("div");
        replies.className = "replies";
        node.appendChild(replies);
      }
      var wrap = document.createElement("div");
      wrap.className = "node";
      wrap.appendChild(article);
      replies.appendChild(wrap);
    } else if (threadPage) {
      var wrapper = document.createElement("div");
      wrapper.className = "node depth-0";
      wrapper.appendChild(article);
      posts.appendChild(wrapper);
    } else {
      posts.insertBefore(article, posts.firstChild);
      if (kiosk) { scroller.toTop(); }
    }
  }

  // a storm: posts came faster than shown one by one; the page loads them on demand (a kiosk
  // by itself, a little later, so a long storm reloads it every few seconds at most)
  function onMore(event) {
    remember(event);
    var data = JSON.parse(event.data);
    if (kiosk) {
      if (!document.body.dataset.reloading) {
        document.body.dataset.reloading = "1";
        setTimeout(function () { window.location.reload(); }, 3000);
      }
      return;
    }
    var banner = document.getElementById("more");
    if (!banner) {
      banner = document.createElement("button");
      banner.id = "more";
      banner.type = "button";
      banner.className = "more";
      banner.dataset.posts = "0";
      banner.addEventListener("click", function () { window.location.reload(); });
      posts.parentElement.insertBefore(banner, posts);
    }
    var count = Number(banner.dataset.posts) + Number(data.posts || 0);
    banner.dataset.posts = String(count);
    banner.dataset.upto = String(data.upto);
    banner.textContent = "Up to " + count + " new posts — show";  // text, never HTML
  }

  function onAck(event) {
    var data = JSON.parse(event.data);
    document.querySelectorAll('[data-acks="' + CSS.escape(data.post_id) + '"]').forEach(
      function (box) {
        var label = "✔ " + data.name + " on it · " + when(data.at);
        var known = Array.prototype.some.call(box.children, function (c) {
          return c.dataset.person === data.person;
        });
        if (known) { return; }
        var span = document.createElement("span");
        span.className = "ack";
        span.dataset.person = data.person;
        span.textContent = label;  // text, never HTML
        box.appendChild(span);
      });
  }

  // the kiosk shows more posts than fit: it glides down through them, rests at the bottom,
  // and goes back to the newest; a new post brings it to the top at once
  // ?rest=SECONDS: how long it rests at the top and at the bottom (default 8)
  var rest = Number(new URLSearchParams(window.location.search).get("rest"));
  rest = rest > 0 ? rest * 1000 : 8000;
  var scroller = {
    timer: null,
    toTop: function () {
      window.scrollTo({top: 0, behavior: "smooth"});
      this.pause(rest);
    },
    pause: function (ms) {
      var self = this;
      clearTimeout(this.timer);
      this.timer = setTimeout(function () { self.step(); }, ms);
    },
    step: function () {
      var bottom = document.documentElement.scrollHeight - window.innerHeight;
      if (bottom <= 0) { this.pause(5000); return; }
      if (window.scrollY >= bottom - 2) {
        document.body.dataset.scrolled = "bottom";
        var self = this;
        clearTimeout(this.timer);
        this.timer = setTimeout(function () { self.toTop(); }, rest);
        return;
      }
      window.scrollBy(0, Math.max(1, Math.round(window.innerHeight / 540)));  // ~50 px/s
      this.pause(40);
    }
  };
  if (kiosk) { scroller.pause(rest); }
  connect();

  var clock = document.getElementById("clock");
  if (clock) {
    var tick = function () { clock.textContent = when(new Date().toISOString()).split(" ").slice(2).join(" "); };
    tick();
    setInterval(tick, 1000);
  }
})();
