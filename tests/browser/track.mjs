// Browser test of the live tracking page GET /track/{id} (consumers/delivery/track.c), driven by
// tests/it/test_track_browser.sh. Headless Chromium is the Debian package (/usr/bin/chromium),
// driven by playwright-core (tests/browser/node_modules; scripts/install-deps.sh browser).
//
//   node tests/browser/track.mjs --base http://127.0.0.1:PORT --id DELIVERY_ID \
//        --signal DIR --shots DIR
//
// The delivery must already be HeadedToPickup with telemetry. The script then asks the shell
// for the next part of the flight by creating DIR/want-1, DIR/want-2, DIR/want-3 (the shell
// feeds: 1 = picked up + first position towards the drop-off, 2 = a later position,
// 3 = arrived + Completed) and waits, with timeouts, until the page shows each. It prints
// "ok   - ..." / "FAIL - ..." lines, saves screenshots DIR/track-*.png, and exits 1 on any
// failure (0 otherwise).
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || !process.argv[i + 1]) {
    console.error(`usage: node track.mjs --base URL --id ID --signal DIR --shots DIR (missing --${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
};
const base = arg('base').replace(/\/$/, '');
const id = arg('id');
const signalDir = arg('signal');
const shotsDir = arg('shots');
const STEP_TIMEOUT = 15000;

let passes = 0;
let fails = 0;
const ok = (what) => { passes++; console.log(`ok   - ${what}`); };
const bad = (what) => { fails++; console.log(`FAIL - ${what}`); };
const check = (what, cond, detail) => (cond ? ok(what) : bad(detail ? `${what} (${detail})` : what));

// A hard limit of the whole run, so a hung browser can never hold the test.
const guard = setTimeout(() => {
  console.log('FAIL - track.mjs did not finish within 50 s');
  process.exit(1);
}, 50000);

const executablePath = process.env.DP_CHROMIUM || '/usr/bin/chromium';
let context = null;
const requests = [];
const problems = []; // page errors and console errors (a CSP violation is one)

// The page's visible state, read in the page.
const snapshot = (page) => page.evaluate(() => {
  const $ = (x) => document.getElementById(x);
  const xy = (el) => {
    const m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(el.getAttribute('transform') || '');
    return m ? [Number(m[1]), Number(m[2])] : null;
  };
  return {
    stage: $('stage').textContent,
    stageClass: $('stage').className,
    note: $('note').textContent,
    peta: $('peta').textContent,
    deta: $('deta').textContent,
    drone: $('droneid').textContent,
    pos: $('pos').textContent,
    upd: $('upd').textContent,
    droneVisible: $('dronemark').getAttribute('visibility') === 'visible',
    droneXY: xy($('dronemark')),
    pickupXY: xy($('pickup')),
    dropoffXY: xy($('dropoff')),
    trailPoints: ($('trail').getAttribute('points') || '').trim().split(/\s+/).filter(Boolean).length,
  };
});
const dist = (a, b) => (a && b ? Math.hypot(a[0] - b[0], a[1] - b[1]) : NaN);
// minutes of "... (in N min)"; null when the text has none
const inMinutes = (text) => {
  const m = /\(in (\d+) min\)/.exec(text);
  return m ? Number(m[1]) : null;
};

// Waits until fn(state) holds; returns the state, or null after the timeout (reported as FAIL).
async function waitFor(page, what, fn) {
  const t0 = Date.now();
  let last = null;
  while (Date.now() - t0 < STEP_TIMEOUT) {
    last = await snapshot(page);
    if (fn(last)) {
      ok(`${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      return last;
    }
    await page.waitForTimeout(100);
  }
  bad(`${what}: not within ${STEP_TIMEOUT / 1000} s; page shows ${JSON.stringify(last)}`);
  return null;
}

function want(step) {
  fs.writeFileSync(path.join(signalDir, `want-${step}`), `${Date.now()}\n`);
}

async function shot(page, name) {
  const file = path.join(shotsDir, `track-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot ${file}`);
}

async function run() {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 20000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // headless mode and a fresh --user-data-dir (a temporary profile) are Playwright's own
  });
  try {
    ok(`headless Chromium ${browser.version()} started`);
    context = await browser.newContext({ viewport: { width: 800, height: 900 }, locale: 'en-GB', timezoneId: 'UTC' });
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });

    const resp = await page.goto(`${base}/track/${encodeURIComponent(id)}`, { waitUntil: 'load', timeout: 10000 });
    check('GET /track/{id} loads in the browser (200)', resp && resp.status() === 200, resp && resp.status());
    // Chromium enforces this policy: the page below works only because it needs no more
    const csp = (resp && (await resp.allHeaders())['content-security-policy']) || '';
    check('the page came with a CSP without unsafe-inline that forbids framing',
      /script-src 'self'/.test(csp) && /style-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp)
        && !/unsafe-inline/.test(csp), csp);

    // 1: in flight to the pickup
    const s1 = await waitFor(page, 'the page shows "Headed To Pickup", both ETAs, the drone and its marker',
      (s) => s.stage === 'Headed To Pickup' && inMinutes(s.peta) !== null && inMinutes(s.deta) !== null
        && s.drone === 'drone-7' && s.droneVisible && s.droneXY && s.pos !== '-');
    check('the delivery id is shown', (await page.textContent('#did')) === id);
    if (s1) {
      check('pickup ETA before delivery ETA', inMinutes(s1.peta) <= inMinutes(s1.deta), `${s1.peta} / ${s1.deta}`);
      check('the map places pickup and drop-off apart', dist(s1.pickupXY, s1.dropoffXY) > 50,
        `${s1.pickupXY} ${s1.dropoffXY}`);
    }
    await shot(page, '1-to-pickup');
    if (!s1) return;

    // 2: picked up, first position towards the drop-off
    want(1);
    const s2 = await waitFor(page, 'the stage changes to "Headed To Dropoff" and the drone moves on',
      (s) => s.stage === 'Headed To Dropoff' && s.pos !== s1.pos && s.deta !== s1.deta
        && inMinutes(s.deta) !== null && s.peta !== s1.peta
        && dist(s.droneXY, s.dropoffXY) < dist(s.pickupXY, s.dropoffXY) - 1);
    if (!s2) { await shot(page, '2-to-dropoff'); return; }
    check('the delivery ETA text changed', s2.deta !== s1.deta, `${s1.deta} -> ${s2.deta}`);
    check('after the pickup, the pickup time is no longer in the future', s2.peta !== s1.peta
      && s2.peta !== '-' && inMinutes(s2.peta) === null, `${s1.peta} -> ${s2.peta}`);
    check('the drone marker moved (SVG transform)', dist(s1.droneXY, s2.droneXY) > 1,
      `${s1.droneXY} -> ${s2.droneXY}`);
    check('the drone marker is past the pickup, nearer the drop-off than before',
      dist(s2.droneXY, s2.dropoffXY) < dist(s2.pickupXY, s2.dropoffXY)
        && dist(s2.droneXY, s2.dropoffXY) / dist(s2.pickupXY, s2.dropoffXY)
          < dist(s1.droneXY, s1.dropoffXY) / dist(s1.pickupXY, s1.dropoffXY),
      `drone ${s2.droneXY}, pickup ${s2.pickupXY}, drop-off ${s2.dropoffXY}`);
    check('the trail grows', s2.trailPoints > s1.trailPoints, `${s1.trailPoints} -> ${s2.trailPoints}`);
    await shot(page, '2-to-dropoff');

    // 3: further on: the delivery ETA comes closer while the drone flies
    want(2);
    const s3 = await waitFor(page, 'a new position: the delivery ETA text changes again',
      (s) => s.pos !== s2.pos && s.deta !== s2.deta);
    if (!s3) return;
    check('the delivery ETA comes closer', inMinutes(s3.deta) !== null && inMinutes(s3.deta) < inMinutes(s2.deta),
      `${s2.deta} -> ${s3.deta}`);
    check('the drone marker moved towards the drop-off',
      dist(s3.droneXY, s3.dropoffXY) < dist(s2.droneXY, s2.dropoffXY) - 1,
      `${s2.droneXY} -> ${s3.droneXY}, drop-off ${s3.dropoffXY}`);

    // 4: arrived, Completed, the stream ends
    want(3);
    const s4 = await waitFor(page, 'the stage changes to "Completed" (green) and the stream ends',
      (s) => s.stage === 'Completed' && / done/.test(s.stageClass) && s.note === 'This delivery has ended.');
    if (s4) {
      check('no ETAs once completed', s4.peta === '-' && s4.deta === '-', `${s4.peta} / ${s4.deta}`);
      check('the drone marker sits on the drop-off', dist(s4.droneXY, s4.dropoffXY) < 1,
        `${s4.droneXY} vs ${s4.dropoffXY}`);
    }
    await shot(page, '3-completed');
  } finally {
    const foreign = requests.filter((u) => {
      if (/^(data|about|blob):/.test(u)) return false;
      try { return new URL(u).hostname !== '127.0.0.1'; } catch { return true; }
    });
    check(`every request of the page went to 127.0.0.1 (${requests.length} requests)`, foreign.length === 0,
      foreign.slice(0, 5).join(' '));
    check('no page error and no console error (CSP violations included)', problems.length === 0,
      problems.slice(0, 5).join(' | '));
    await browser.close();
  }
}

try {
  await run();
} catch (e) {
  bad(`browser run: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' ') : e}`);
} finally {
  clearTimeout(guard);
}
console.log(`track.mjs: ${passes} passed, ${fails} failed`);
process.exit(fails === 0 && passes > 0 ? 0 : 1);
