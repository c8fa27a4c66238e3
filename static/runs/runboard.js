// Runboard: local times, copy-link buttons, and clean URLs for htmx filter forms. No build.
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

  document.addEventListener("DOMContentLoaded", function () { localizeTimes(document); });
  document.addEventListener("htmx:load", function (event) { localizeTimes(event.detail.elt); });
})();
