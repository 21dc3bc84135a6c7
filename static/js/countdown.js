/* Live countdowns for <time datetime="ISO-8601" data-countdown> elements: "in 14 min 32 s",
   "passed 3 min 0 s ago". Loaded with <script src defer>; no inline script (the Content-Security-Policy
   will forbid it). The page carries the deadline in UTC; the server writes the same text
   (portal.domain.formats.countdown_words), which stays where scripts do not run. Counted on the
   wall clock: the working time left is shown beside. */
(function () {
  "use strict";

  var elements = document.querySelectorAll("time[data-countdown]");
  if (!elements.length) {
    return;
  }

  function format(ms) {
    var s = Math.floor(ms / 1000);
    var days = Math.floor(s / 86400);
    var hours = Math.floor((s % 86400) / 3600);
    var minutes = Math.floor((s % 3600) / 60);
    var seconds = s % 60;
    var parts = [];
    if (days) {
      parts.push(days + " d");
    }
    if (days || hours) {
      parts.push(hours + " h");
    }
    parts.push(minutes + " min");
    if (!days) {
      parts.push(seconds + " s");
    }
    return parts.join(" ");
  }

  function tick() {
    var now = Date.now();
    for (var i = 0; i < elements.length; i++) {
      var el = elements[i];
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) {
        continue;
      }
      var left = due - now;
      el.textContent = left > 0 ? "in " + format(left) : "passed " + format(-left) + " ago";
      el.classList.toggle("overdue", left <= 0);
    }
  }

  tick();
  window.setInterval(tick, 1000);
})();
