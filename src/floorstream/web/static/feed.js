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

  // times: the server writes them in UTC, named; here they become the reader's own zone,
  // named too ("02 Nov 09:04:40 CET"), the UTC instant kept in the tooltip
  // en-GB: zone abbreviations ("CET"; en-US says "GMT+1"); its "Sept" is cut to three letters
  var stamp = new Intl.DateTimeFormat("en-GB", {day: "2-digit", month: "short", year: "numeric",
                                                 hour: "2-digit", minute: "2-digit",
                                                 second: "2-digit", hourCycle: "h23",
                                                 timeZoneName: "short"});
  var thisYear = String(new Date().getFullYear());
  function when(iso) {
    var parts = {};
    stamp.formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
    // the year only when it is not this one (an ASN from last year must not read as today's)
    return parts.day + " " + parts.month.slice(0, 3) + (parts.year === thisYear ? "" : " " + parts.year) +
      " " + parts.hour + ":" + parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  }
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (!isNaN(Date.parse(iso))) { t.textContent = when(iso); t.title = iso; }
    });
  }

  // the filter's from/to: UTC on the server (and without this script); here the reader's
  // wall-clock times, shown and typed in their zone and sent as UTC instants
  function zoneName() {
    var name = "";
    stamp.formatToParts(new Date()).forEach(function (p) {
      if (p.type === "timeZoneName") { name = p.value; }
    });
    return name;
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function wallClock(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  document.querySelectorAll("form.filters").forEach(function (form) {
    var inputs = form.querySelectorAll('input[type="datetime-local"]');
    form.querySelectorAll("abbr.zone").forEach(function (abbr) {
      abbr.textContent = zoneName();
      abbr.title = "times in your zone, " + Intl.DateTimeFormat().resolvedOptions().timeZone;
    });
    inputs.forEach(function (input) {
      var utc = Date.parse(input.value + "Z");
      if (input.value && !isNaN(utc)) { input.value = wallClock(new Date(utc)); }
    });
    form.addEventListener("submit", function () {
      inputs.forEach(function (input) {
        var at = Date.parse(input.value);  // a date-time without zone: the reader's own
        if (!input.value || isNaN(at)) { return; }
        var sent = document.createElement("input");
        sent.type = "hidden";
        sent.name = input.name;
        sent.value = new Date(at).toISOString();
        input.disabled = true;  // the UTC copy goes instead
        form.appendChild(sent);
      });
    });
    // back to this page from the browser's cache: the fields typed in again
    window.addEventListener("pageshow", function () {
      inputs.forEach(function (input) { input.disabled = false; });
      form.querySelectorAll('input[type="hidden"][name="since"], input[type="hidden"][name="until"]')
        .forEach(function (sent) { sent.remove(); });
    });
  });

  var posts = document.getElementById("posts");
  fillTokens(document);
  localTimes(document);
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
    localTimes(article);
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
