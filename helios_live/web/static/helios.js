// The Helios dashboard's one script (the CSP allows no inline script): fragments refreshed in
// place when the engine publishes an event, and the price chart. Controls are plain forms.
(function () {
  "use strict";

  function refresh(element) {
    return fetch(element.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (answer.status === 401) { window.location.assign("/ui/login"); return null; }
        return answer.ok ? answer.text() : Promise.reject(answer.status);
      })
      .then(function (html) {
        if (html === null) { return; }
        element.innerHTML = html;
        element.classList.remove("stale");
        element.dataset.refreshed = String(Date.now());
      })
      .catch(function () { element.classList.add("stale"); });
  }

  var waiting = null;
  function refreshSoon() {
    if (waiting !== null) { return; }
    waiting = window.setTimeout(function () {
      waiting = null;
      document.querySelectorAll("[data-fragment]").forEach(refresh);
      if (chart !== null) { chart.reload(); }
    }, 250);
  }

  function listen() {
    var badge = document.getElementById("live");
    var source = new EventSource("/ui/stream");
    source.onopen = function () { if (badge) { badge.textContent = "live"; badge.className = "badge live"; } };
    source.onmessage = refreshSoon;
    source.onerror = function () { if (badge) { badge.textContent = "reconnecting"; badge.className = "badge stale"; } };
    window.setInterval(refreshSoon, 15000); // a page also catches up without events (a quiet market)
  }

  var chart = null;
  function drawChart(element) {
    var view = LightweightCharts.createChart(element, {
      height: 480,
      layout: { background: { color: "#ffffff" }, textColor: "#263238" },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    var lines = [];
    var prices = [];
    // The open position's stop and take-profit stay in view: price lines do not count in autoscale.
    var candles = view.addCandlestickSeries({
      autoscaleInfoProvider: function (original) {
        var range = original();
        if (range !== null && prices.length > 0) {
          range.priceRange.minValue = Math.min.apply(null, [range.priceRange.minValue].concat(prices));
          range.priceRange.maxValue = Math.max.apply(null, [range.priceRange.maxValue].concat(prices));
        }
        return range;
      },
    });
    function reload() {
      return fetch(element.dataset.src, { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.json() : Promise.reject(answer.status); })
        .then(function (data) {
          candles.setData(data.candles);
          candles.setMarkers(data.markers);
          lines.forEach(function (line) { candles.removePriceLine(line); });
          prices = data.lines.map(function (line) { return line.price; });
          lines = data.lines.map(function (line) {
            return candles.createPriceLine({ price: line.price, color: line.color, title: line.title, lineStyle: 2 });
          });
          element.dataset.candles = String(data.candles.length);
          element.dataset.markers = String(data.markers.length);
        })
        .catch(function () { element.classList.add("stale"); });
    }
    reload();
    return { reload: reload };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var element = document.getElementById("chart");
    if (element !== null) { chart = drawChart(element); }
    if (document.querySelector("[data-fragment]") !== null || chart !== null) { listen(); }
  });
})();
