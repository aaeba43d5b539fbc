// Draws the dashboard's charts from the figures the page embeds (no network: Chart.js is
// served from our own static files). Each drawn canvas is marked data-rendered="true".
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("metrics-chart-data").textContent);
  const palette = ["#417690", "#79aec8", "#e0a458", "#c25450", "#5b8c5a", "#8e6c8a", "#6c757d"];

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    config.options = Object.assign(
      { animation: false, responsive: true, maintainAspectRatio: false },
      config.options || {}
    );
    new Chart(canvas, config);
    canvas.dataset.rendered = "true";
  }

  draw("chart-funnel", {
    type: "bar",
    data: {
      labels: data.funnel.labels,
      datasets: [{ label: "Gaps", data: data.funnel.values, backgroundColor: palette[0] }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
  draw("chart-trend", {
    type: "line",
    data: {
      labels: data.trend.labels,
      datasets: data.trend.series.map(function (series, i) {
        return {
          label: series.label,
          data: series.values,
          borderColor: palette[i % palette.length],
          backgroundColor: palette[i % palette.length],
          spanGaps: true,
        };
      }),
    },
    options: {
      scales: { y: { min: 0, max: 100, title: { display: true, text: "%" } } },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12, font: { size: 10 } } } },
    },
  });
  draw("chart-aging", {
    type: "bar",
    data: {
      labels: data.aging.labels,
      datasets: [{ label: "Open items", data: data.aging.values, backgroundColor: palette[2] }],
    },
    options: { plugins: { legend: { display: false } } },
  });
  draw("chart-quality", {
    type: "bar",
    data: {
      labels: data.quality.labels,
      datasets: [
        { label: "Now %", data: data.quality.now, backgroundColor: palette[0] },
        { label: "Projected %", data: data.quality.projected, backgroundColor: palette[1] },
      ],
    },
    options: { scales: { y: { min: 0, max: 100 } } },
  });
})();
