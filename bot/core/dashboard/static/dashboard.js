// Draws the usage charts from the JSON the page carries, with the vendored uPlot.
// Without JavaScript the tables below the charts show the same numbers.
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563", "#9ca3af"];
  var holder = document.getElementById("usage-data");
  if (!holder || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(holder.textContent);
  var groups = Object.keys(data.requests || {});
  if (!data.x.length || !groups.length) { return; }
  var drawn = 0;
  document.querySelectorAll("figure.chart").forEach(function (figure) {
    var metric = figure.dataset.metric;
    var series = [{}];
    var columns = [data.x];
    groups.forEach(function (g, i) {
      series.push({label: g, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false,
                   points: {show: true, size: 5}});
      columns.push(data[metric][g]);
    });
    var width = Math.max(320, Math.min(figure.clientWidth || 640, 900));
    var plot = new uPlot({
      width: width, height: 220, series: series,
      scales: {x: {time: true}},
      axes: [{}, {label: figure.dataset.unit, size: 70,
                  values: figure.dataset.unit === "USD"
                    ? function (u, vals) { return vals.map(function (v) { return v == null ? "" : "$" + v.toFixed(4); }); }
                    : undefined}],
      legend: {show: true}
    }, columns, figure);
    figure.dataset.rendered = "true";
    figure.plot = plot;
    drawn += 1;
  });
  document.body.dataset.charts = String(drawn);
})();
