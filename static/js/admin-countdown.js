/* Live countdowns in the staff admin: every <time datetime="..." data-countdown> shows the wall
   time left to its moment ("in 14 min") or past it ("3 min overdue"), updated every second. The
   server renders the same text (tickets.admin.wall_left), so the page reads right without it. */
(function () {
  "use strict";

  function format(ms) {
    var seconds = Math.floor(Math.abs(ms) / 1000);
    var days = Math.floor(seconds / 86400);
    var hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var text;
    if (days) {
      text = days + " d " + hours + " h";
    } else if (hours) {
      text = hours + " h " + minutes + " min";
    } else if (minutes) {
      text = minutes + " min";
    } else {
      text = (seconds % 60) + " s";
    }
    return ms >= 0 ? "in " + text : text + " overdue";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) {
        return;
      }
      var left = due - now;
      el.textContent = format(left);
      el.classList.toggle("countdown-overdue", left < 0);
      el.classList.toggle("countdown-soon", left >= 0 && left < 15 * 60 * 1000);
    });
  }

  function start() {
    tick();
    window.setInterval(tick, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
