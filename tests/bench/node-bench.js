#!/usr/bin/env node
'use strict'

// The Node side of `many-level bench`: a many-level 2.0.0 guest (the
// reference) running the seven workloads of docs/BENCHMARKS.md against a host,
// printing one JSON line per workload exactly as `many-level bench` does:
//
//   {"impl":..., "workload":"W1 sequential put", "ops":N, "secs":T, "ops_per_s":R}
//
//   node node-bench.js --connect tcp://127.0.0.1:PORT|unix:PATH
//                      [--scale S] [--impl NAME] [--only W1,W3] [--timeout SECS]
//
// N = 200000*S (at least 1000), M = 20000*S (at least 100); keys are "k" and
// i zero-padded to 15 digits, values 100 bytes; utf8 strings on the guest side.
//   W1 M puts, each awaited           W2 N puts, up to 1000 in flight
//   W3 M gets, each awaited           W4 N gets, up to 1000 in flight
//   W5 N/1000 batches of 1000 puts    W6 one iterator over every entry, nextv(1000)
//   W7 N/1000 getMany of 1000 keys
// It clears the host's database first: point it at a host whose data may go.
// Numbers from here are for tests/bench/run.sh, never for timed tests.

const path = require('path')

const interopDir = path.join(__dirname, '..', 'interop')
// The Node packages live in tests/interop/node_modules (installed by
// scripts/install-node-packages.sh); NODE_PATH works too.
function load (name) {
  return require(require.resolve(name, { paths: [interopDir, __dirname] }))
}
const { ManyLevelGuest } = load('many-level')
const { parseArgs, UsageError, attachGuest, deadline } = require(path.join(interopDir, 'lib', 'common'))

const USAGE = 'usage: node-bench.js --connect ADDR [--scale S] [--impl NAME] [--only W1,W3] [--timeout SECS]'
const WINDOW = 1000

function keyOf (i) {
  return 'k' + String(i).padStart(15, '0')
}

const VALUE_100 = 'v'.repeat(100)

// Keeps up to `window` operations in flight: each one that completes starts
// the next, until `count` have been started; resolves when all have completed.
function pipelined (count, window, start) {
  return new Promise((resolve, reject) => {
    let started = 0
    let done = 0
    let failed = false
    const launch = () => {
      const i = started++
      start(i).then(() => {
        if (failed) return
        done++
        if (started < count) launch()
        else if (done === count) resolve()
      }, (err) => {
        if (!failed) { failed = true; reject(err) }
      })
    }
    if (count === 0) return resolve()
    for (let k = 0; k < Math.min(window, count); k++) launch()
  })
}

function workloads (db, n, m) {
  return [
    ['W1 sequential put', m, async () => {
      for (let i = 0; i < m; i++) await db.put(keyOf(i), VALUE_100)
    }],
    ['W2 pipelined put', n, () => pipelined(n, WINDOW, (i) => db.put(keyOf(i), VALUE_100))],
    ['W3 sequential get', m, async () => {
      for (let i = 0; i < m; i++) {
        const value = await db.get(keyOf(i))
        if (value === undefined) throw new Error(`W3: missing ${keyOf(i)}`)
      }
    }],
    ['W4 pipelined get', n, () => pipelined(n, WINDOW, (i) => db.get(keyOf(i)))],
    ['W5 batch', n, async () => {
      for (let start = 0; start < n; start += 1000) {
        const ops = []
        for (let i = start; i < Math.min(n, start + 1000); i++) ops.push({ type: 'put', key: keyOf(i), value: VALUE_100 })
        await db.batch(ops)
      }
    }],
    ['W6 iterate all', n, async () => {
      const iterator = db.iterator()
      let seen = 0
      try {
        for (let entries = await iterator.nextv(1000); entries.length !== 0; entries = await iterator.nextv(1000)) {
          seen += entries.length
        }
      } finally {
        await iterator.close()
      }
      if (seen !== n) throw new Error(`W6: iterated ${seen} of ${n}`)
    }],
    ['W7 getMany', n, async () => {
      for (let start = 0; start < n; start += 1000) {
        const keys = []
        for (let i = start; i < Math.min(n, start + 1000); i++) keys.push(keyOf(i))
        const values = await db.getMany(keys)
        if (values[values.length - 1] === undefined) throw new Error(`W7: missing ${keys[keys.length - 1]}`)
      }
    }]
  ]
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--scale': 'number',
      '--impl': 'string',
      '--only': 'string',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.connect) throw new UsageError('--connect ADDR is required')
    if (opts.scale === undefined) opts.scale = 1
    if (!(opts.scale > 0)) throw new UsageError('--scale must be positive')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`node-bench: ${err.message}\n${USAGE}`)
    return 2
  }
  deadline((opts.timeout || 900) * 1000, 'node-bench')

  const n = Math.max(1000, Math.floor(200000 * opts.scale))
  const m = Math.max(100, Math.floor(20000 * opts.scale))
  const only = opts.only ? new Set(opts.only.split(',')) : null
  const impl = opts.impl || 'node-guest'

  const db = new ManyLevelGuest()
  let lost = null
  const socket = attachGuest(db, opts.connect, (err) => { lost = err || new Error('connection closed') })
  await db.open()
  await db.clear()

  for (const [name, ops, run] of workloads(db, n, m)) {
    if (only && !only.has(name.slice(0, 2))) continue
    const start = process.hrtime.bigint()
    await run()
    const secs = Number(process.hrtime.bigint() - start) / 1e9
    process.stdout.write(JSON.stringify({ impl, workload: name, ops, secs, ops_per_s: secs > 0 ? ops / secs : 0 }) + '\n')
    if (lost) throw lost
  }

  await db.close()
  socket.destroy()
  return 0
}

main().then((code) => {
  process.exitCode = code
}, (err) => {
  console.error('node-bench: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
