// Runboard: local times, copy-link buttons, clean URLs for htmx filter forms, previews bound to
// their forms, the header's rerun action. No build.
(function () {
  "use strict";

  // <time datetime> arrives in UTC from the server; show it in the viewer's zone, UTC on hover.
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = el.textContent.trim();
      el.textContent = format.format(when);
      el.dataset.local = "1";
    });
  }

  // A copy-link button is a plain link without JS; with JS it copies the absolute permalink.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-copy]");
    if (!link || !navigator.clipboard) return;
    event.preventDefault();
    navigator.clipboard.writeText(link.dataset.copy).then(function () {
      var label = link.textContent;
      link.textContent = "✓ Link copied";
      setTimeout(function () { link.textContent = label; }, 2000);
    }, function () { window.location.href = link.href; });
  });

  // Empty filters stay out of the URL that htmx pushes, so shared links stay short.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get") return;
    var params = event.detail.parameters;
    var empty = [];
    for (var pair of event.detail.formData.entries()) {
      if (pair[1] === "") empty.push(pair[0]);
    }
    empty.forEach(function (name) { delete params[name]; });
  });

  // A preview is bound to its inputs: once the form changes, Send hides until the next Preview
  // (the server refuses a Send whose inputs plan otherwise anyway). Table checkboxes belong
  // to the form through their form= attribute, so listen on the document.
  function onFormChange(event) {
    var form = event.target.form;
    if (!form || !form.hasAttribute("data-preview-bound")) return;
    syncAgentPicker(form, event.target);
    var send = form.querySelector("[data-send]");
    if (!send || send.hidden) return;
    send.hidden = true;
    form.querySelectorAll("[data-stale-note]").forEach(function (note) { note.hidden = false; });
    form.querySelectorAll(".preview").forEach(function (preview) { preview.classList.add("is-stale"); });
    var preview = form.querySelector("button[value=preview]");
    if (preview) preview.classList.add("primary");
  }

  // "Each case on the agent it ran on" and checked agents exclude each other.
  function syncAgentPicker(form, changed) {
    if (changed.name === "agents" && changed.checked) {
      var chosen = form.querySelector("input[name=where][value=chosen]");
      if (chosen) chosen.checked = true;
    } else if (changed.name === "where" && changed.value === "own") {
      form.querySelectorAll("input[name=agents]").forEach(function (box) { box.checked = false; });
    }
  }
  document.addEventListener("input", onFormChange);
  document.addEventListener("change", onFormChange);

  // The header's "Rerun…" brings the rerun panel into view and puts the focus in it.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-open-panel]");
    if (!link) return;
    var panel = document.getElementById(link.dataset.openPanel);
    if (!panel) return;
    event.preventDefault();
    panel.scrollIntoView({ block: "start" });
    var first = panel.querySelector("input:not([type=hidden]), button");
    if (first) first.focus({ preventScroll: true });
    history.replaceState(null, "", "#" + panel.id);
  });

  document.addEventListener("DOMContentLoaded", function () { localizeTimes(document); });
  document.addEventListener("htmx:load", function (event) { localizeTimes(event.detail.elt); });
})();
