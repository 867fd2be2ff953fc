/* Ballot page enhancement: live counters (quadratic credits, dots, knapsack money left, personal
 * share left). The page works without it: the server renders the same figures and validates every
 * ballot; this only advises while the member types. Loaded from 'self' (CSP), no inline handlers. */
(function () {
  "use strict";
  var form = document.querySelector("form.ballot[data-ballot-kind]");
  if (!form) { return; }
  var kind = form.getAttribute("data-ballot-kind");
  var currency = form.getAttribute("data-currency") || "EUR";
  var counter = document.getElementById("ballot-counter");
  if (!counter) { return; }

  var fmt;
  try {
    fmt = new Intl.NumberFormat("en", { style: "currency", currency: currency, currencyDisplay: "code" });
  } catch (e) {
    fmt = null;
  }
  var exponent = fmt ? fmt.resolvedOptions().maximumFractionDigits : 2;
  var unit = Math.pow(10, exponent);

  function money(minor) {
    // same shape as the server's format_money: "1,234.56 EUR"
    var major = (minor / unit).toLocaleString("en", { minimumFractionDigits: exponent, maximumFractionDigits: exponent });
    return major + " " + currency;
  }

  function out(name, text) {
    var el = counter.querySelector('[data-out="' + name + '"]');
    if (el) { el.textContent = text; }
  }

  function intOf(input) {
    var v = (input.value || "").trim();
    if (!/^-?\d+$/.test(v)) { return 0; }
    return parseInt(v, 10);
  }

  function amountOf(input) {
    // accepts "12", "12.5", "12,50", "1,234.50"; anything else counts as 0 (the server explains)
    var v = (input.value || "").trim().replace(/\s/g, "");
    if (!v) { return 0; }
    var m = v.match(/^(\d{1,3}(?:,\d{3})+|\d+)(?:[.,](\d+))?$/);
    if (!m) { return 0; }
    var whole = parseInt(m[1].replace(/,/g, ""), 10);
    var frac = m[2] || "";
    if (frac.length > exponent) { return 0; }
    while (frac.length < exponent) { frac += "0"; }
    return whole * unit + (frac ? parseInt(frac, 10) : 0);
  }

  function setMeter(id, value, max) {
    var meter = document.getElementById(id);
    if (meter) { meter.value = Math.max(0, Math.min(value, max)); }
  }

  function overNote(left, text) {
    out("over", left < 0 ? " " + text : "");
  }

  function update() {
    if (kind === "points") {
      var quadratic = form.hasAttribute("data-quadratic");
      var total = parseInt(form.getAttribute("data-credits"), 10);
      var used = 0;
      form.querySelectorAll("input.points").forEach(function (input) {
        var v = intOf(input);
        var cost = quadratic ? v * v : v;
        used += cost;
        var costOut = form.querySelector('[data-cost-for="' + input.id + '"]');
        if (costOut) { costOut.textContent = String(cost); }
      });
      out("used", String(used));
      out("left", String(total - used));
      overNote(total - used, "(over your limit)");
      setMeter("credit-meter", used, total);
    } else if (kind === "approval") {
      var cost = 0;
      var count = 0;
      form.querySelectorAll("input[type=checkbox][data-cost-minor]").forEach(function (box) {
        if (box.checked) { cost += parseInt(box.getAttribute("data-cost-minor"), 10); count += 1; }
      });
      out("count", String(count));
      out("cost", money(cost));
      var limit = form.getAttribute("data-limit-minor");
      if (limit !== null) {
        var left = parseInt(limit, 10) - cost;
        out("left", money(left));
        overNote(left, "(over the limit)");
        setMeter("knapsack-meter", cost, parseInt(limit, 10));
      }
    } else if (kind === "allocation") {
      var given = 0;
      form.querySelectorAll("input.amount").forEach(function (input) { given += amountOf(input); });
      out("given", money(given));
      var share = form.getAttribute("data-share-minor");
      if (share !== null) {
        var rest = parseInt(share, 10) - given;
        out("left", money(rest));
        overNote(rest, "(more than your share)");
        setMeter("share-meter", given, parseInt(share, 10));
      }
    }
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
}());
