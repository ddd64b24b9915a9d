#!/usr/bin/env node
'use strict'

// A retrying Node guest (many-level 2.0.0, retry: true) iterating a big
// seeded range while its connection is cut again and again; it reconnects
// each time and the iterator must go on where it was.
//
//   node retry-iterate.js --connect ADDR --cut-every N[ms]
//                         [--count M] [--key-shape fixed|mixed] [--no-seed]
//                         [--reverse] [--strict]
//                         [--no-yield] [--timeout SECONDS]
//
// --cut-every N    destroy the socket after every N entries consumed;
//                  "Nms" destroys it every N milliseconds instead.
// --count M        size of the seeded range (default 5000): keys
//                  seed:00000000 .. seed:M-1 (see lib/common.js). They are
//                  written first, over a separate non-retrying connection,
//                  unless --no-seed (e.g. the host ran with --seed M).
// --key-shape mixed  keys of every length instead (mix:a, mix:aa, mix:aab,
//                  ...: at least --count of them), where resuming a reverse
//                  scan by decrementing the bookmark's last byte skips keys
//                  (a known bug of the reference host, PROTOCOL.md).
// --reverse        iterate in reverse.
// --strict         fail on duplicates too.
// --no-yield       consume without yielding to the event loop between entries
//                  (by default it yields, so that a cut is noticed while data
//                  is still buffered in the guest).
//
// Checks: every key of the range arrives, in order, with its value; no key
// is skipped and none is out of order. The reference guest may yield an
// entry twice after a reconnect (it keeps data received but not consumed,
// and the host resends from the bookmark: see PROTOCOL.md), so a key equal
// to one already yielded is counted as a duplicate, not failed, unless
// --strict. The closing line reads "retry-iterate: N passed, N failed".

const assert = require('node:assert/strict')
const { ManyLevelGuest } = require('many-level')
const {
  parseArgs, UsageError, parseAddress, attachGuest, deadline,
  SEED_PREFIX, seedKey, seedValue, seedIndex, writeSeed
} = require('./lib/common')

const USAGE = 'usage: retry-iterate.js --connect ADDR --cut-every N[ms] [--count M] [--key-shape fixed|mixed] [--no-seed] [--reverse] [--strict] [--no-yield] [--timeout SECONDS]'

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--cut-every': 'string',
      '--count': 'number',
      '--key-shape': 'string',
      '--no-seed': 'boolean',
      '--reverse': 'boolean',
      '--strict': 'boolean',
      '--no-yield': 'boolean',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.connect) throw new UsageError('--connect is required')
    parseAddress(opts.connect)
    const m = /^(\d+)(ms)?$/.exec(opts.cutEvery || '')
    if (!m || Number(m[1]) <= 0) throw new UsageError('--cut-every needs N (entries) or Nms (milliseconds), N > 0')
    opts.cutEntries = m[2] ? 0 : Number(m[1])
    opts.cutMs = m[2] ? Number(m[1]) : 0
    opts.count = opts.count === undefined ? 5000 : opts.count
    if (!(opts.count > 0)) throw new UsageError('--count must be positive')
    opts.keyShape = opts.keyShape || 'fixed'
    if (!['fixed', 'mixed'].includes(opts.keyShape)) throw new UsageError(`unknown --key-shape ${opts.keyShape}`)
    if (opts.keyShape === 'mixed' && opts.noSeed) throw new UsageError('--key-shape mixed writes its own keys: no --no-seed')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`retry-iterate: ${err.message}\n${USAGE}`)
    return 2
  }
  deadline((opts.timeout || 120) * 1000, 'retry-iterate')

  // The keys, in iteration order (before --reverse), and their values.
  const shape = opts.keyShape
  let keys, valueOf, prefix
  if (shape === 'fixed') {
    prefix = SEED_PREFIX
    keys = Array.from({ length: opts.count }, (_, i) => seedKey(i))
    valueOf = (key) => seedValue(seedIndex(key))
  } else if (shape === 'mixed') {
    // Every string over {a, b} of length 1..L (L the smallest giving at least
    // --count keys): between a key and the key with its last byte
    // decremented lie many others, which a reverse resume must not skip.
    prefix = 'mix:'
    const words = []
    for (let len = 1; words.length < opts.count; len++) {
      for (let i = 0; i < 2 ** len; i++) words.push(i.toString(2).padStart(len, '0').replace(/0/g, 'a').replace(/1/g, 'b'))
    }
    keys = words.map((w) => prefix + w).sort()
    valueOf = (key) => 'value of ' + key
  }
  const n = keys.length
  const positions = new Map(keys.map((k, i) => [k, i]))
  const range = { gte: prefix, lt: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1) }

  // 1. Seed over a plain connection.
  if (!opts.noSeed) {
    const seeder = new ManyLevelGuest()
    const socket = attachGuest(seeder, opts.connect)
    await seeder.clear(range)
    if (shape === 'fixed') {
      await writeSeed(seeder, n)
    } else {
      for (let start = 0; start < n; start += 1000) {
        await seeder.batch(keys.slice(start, start + 1000).map((key) => ({ type: 'put', key, value: valueOf(key) })))
      }
    }
    await seeder.close()
    socket.destroy()
    console.log(`# seeded ${n} entries (${shape} keys)`)
  }

  // 2. Iterate with a retrying guest whose connection gets cut.
  const db = new ManyLevelGuest({ retry: true })
  let socket = null
  let connections = 0
  let cuts = 0
  let finished = false

  const connect = () => {
    if (finished) return
    connections++
    socket = attachGuest(db, opts.connect, () => {
      // Reconnect at once, as a retrying guest would (the old stream must
      // have finished first: only one rpc stream can be active).
      if (!finished) setImmediate(connect)
    })
  }
  const cut = () => {
    if (finished || !socket || socket.destroyed) return
    cuts++
    socket.destroy()
  }
  connect()

  let timer = null
  if (opts.cutMs) timer = setInterval(cut, opts.cutMs)

  const order = opts.reverse ? (i) => keys[n - 1 - i] : (i) => keys[i]
  let expected = 0 // position in iteration order of the next new key
  let duplicates = 0
  let consumed = 0
  const problems = []

  const it = db.iterator({ ...range, reverse: !!opts.reverse })
  const started = Date.now()
  for (;;) {
    const entry = await it.next()
    if (entry === undefined) break
    consumed++
    const [key, value] = entry
    const idx = positions.get(key)
    if (idx === undefined) {
      problems.push(`unexpected key ${key} after ${consumed} entries`)
      break
    }
    if (value !== valueOf(key)) problems.push(`wrong value for ${key}: ${value}`)
    const pos = opts.reverse ? n - 1 - idx : idx
    if (pos === expected) {
      expected++
    } else if (pos < expected) {
      duplicates++
    } else {
      problems.push(`key ${key} came when ${order(expected)} was due: ${pos - expected} key(s) skipped`)
      break
    }
    if (opts.cutEntries && consumed % opts.cutEntries === 0) cut()
    if (problems.length > 10) break
    // Let I/O events in between entries, as a consumer that does real work
    // would; otherwise the guest drains its buffer before it even sees the
    // connection close, and the resume path is barely exercised.
    if (!opts.noYield) await new Promise(setImmediate)
  }
  const elapsed = Date.now() - started
  finished = true
  if (timer) clearInterval(timer)
  await it.close().catch(() => {})
  await db.close().catch(() => {})
  if (socket) socket.destroy()

  // 3. Report.
  const checks = [
    ['every key arrived once at least, in order, with its value', () => {
      assert.deepEqual(problems, [])
      assert.equal(expected, n, `${expected} of ${n} keys arrived`)
    }],
    ['the connection was cut and the guest reconnected', () => {
      assert.ok(cuts >= 1, 'no cut happened: the range is too small for --cut-every')
      assert.ok(connections >= 2, `only ${connections} connection(s)`)
    }],
    [`duplicates after reconnects: ${duplicates}${opts.strict ? ' (--strict: none allowed)' : ' (counted, allowed for the reference guest)'}`, () => {
      if (opts.strict) assert.equal(duplicates, 0)
    }]
  ]
  let passed = 0
  let failed = 0
  checks.forEach(([name, fn], i) => {
    try {
      fn()
      passed++
      console.log(`ok ${i + 1} - ${name}`)
    } catch (err) {
      failed++
      console.log(`not ok ${i + 1} - ${name}`)
      console.log(`  # ${err.message.split('\n').join('\n  # ')}`)
    }
  })
  console.log(`1..${checks.length}`)
  console.log(`# ${n} ${shape} keys${opts.reverse ? ' in reverse' : ''}, ${consumed} entries consumed, ` +
    `${duplicates} duplicates, ${cuts} cuts, ${connections} connections, ${elapsed} ms`)
  console.log(`retry-iterate: ${passed} passed, ${failed} failed`)
  return failed === 0 ? 0 : 1
}

main().then((code) => {
  process.exit(code)
}, (err) => {
  console.error('retry-iterate: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
