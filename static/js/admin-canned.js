/* The ticket page's canned replies: "Insert" asks the server for the chosen reply filled in for
   this ticket (tickets.admin.operations.canned_view) and puts it in the reply's text at the cursor,
   keeping what the agent already typed; the agent edits it and sends it with the form as any reply.
   Without this script the same button reloads the page with the filled reply in the text. */
(function () {
  "use strict";

  function insert(textarea, text) {
    var start = textarea.selectionStart, end = textarea.selectionEnd, value = textarea.value;
    if (!value.trim()) {
      textarea.value = text;
      start = 0;
    } else {
      textarea.value = value.slice(0, start) + text + value.slice(end);
    }
    textarea.focus();
    textarea.setSelectionRange(start + text.length, start + text.length);
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function start() {
    var form = document.getElementById("canned-form");
    var select = document.getElementById("id_canned");
    var textarea = document.querySelector("#reply-form textarea[name=body]");
    var status = document.querySelector(".canned-status");
    if (!form || !select || !textarea) {
      return;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!select.value) {
        status.textContent = "Choose a canned reply first.";
        return;
      }
      var url = select.getAttribute("data-fill-url") + "?reply=" + encodeURIComponent(select.value);
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.json().then(function (data) {
            return { ok: response.ok, data: data };
          });
        })
        .then(function (answer) {
          if (!answer.ok) {
            status.textContent = answer.data.error || "The reply could not be filled in.";
            return;
          }
          insert(textarea, answer.data.body);
          status.textContent = "“" + answer.data.name + "” filled in for this ticket: edit it before sending.";
        })
        .catch(function () {
          status.textContent = "The reply could not be filled in (no answer from the server).";
        });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
