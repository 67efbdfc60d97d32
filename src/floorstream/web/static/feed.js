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

  function when(iso) {
    var d = new Date(iso);
    return d.toLocaleString(undefined, {day: "2-digit", month: "short", hour: "2-digit",
                                         minute: "2-digit", second: "2-digit"});
  }

  var posts = document.getElementById("posts");
  fillTokens(document);
  if (!posts || !posts.dataset.live || !window.EventSource) { return; }
  var threadPage = posts.dataset.thread === "1";
  var kiosk = posts.dataset.kiosk === "1";
  var source = new EventSource(posts.dataset.live);
  document.body.dataset.live = "connecting";
  source.onopen = function () { document.body.dataset.live = "open"; };
  source.onerror = function () { document.body.dataset.live = "reconnecting"; };

  source.addEventListener("post", function (event) {
    var data = JSON.parse(event.data);
    if (document.getElementById("post-" + data.id)) { return; }
    var holder = document.createElement("div");
    holder.innerHTML = data.html;  // rendered and escaped by the server's templates
    var article = holder.firstElementChild;
    fillTokens(article);
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
      if (kiosk) { window.scrollTo({top: 0, behavior: "smooth"}); }
    }
  });

  // a storm: posts came faster than shown one by one; the page loads them on demand (a kiosk
  // by itself, a little later, so a long storm reloads it every few seconds at most)
  source.addEventListener("more", function (event) {
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
  });

  source.addEventListener("ack", function (event) {
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
  });

  var clock = document.getElementById("clock");
  if (clock) {
    var tick = function () { clock.textContent = new Date().toLocaleTimeString(); };
    tick();
    setInterval(tick, 1000);
  }
})();
