#!/usr/bin/env node
'use strict'

// Writes of a real Node many-level guest (many-level 2.0.0 from npm) reach a
// C++ watcher on the C++ host. Against `many-level serve` this starts two
// `many-level watch --json` processes (the C++ Guest's watch()): one on the
// range [b, d) and one on everything. When the host counts both watches, a
// Node ManyLevelGuest (plain protocol, no extension) makes puts, dels, a
// batch (in and out of the range), a ranged clear and a whole clear. Both
// watchers must print exactly the expected lines: every commit in commit
// order with its sequence number, the values byte for byte (UTF-8 text
// outside ASCII, a binary value as value_hex, a value of 100 KB), and the
// range watcher nothing outside its range (the last write out of range is
// followed by one in range, so a leak would show before it). The host's
// statistics must show the writer as a guest without the extension.
//
//   node node-guest-watch.js --connect ADDR --many-level /path/to/many-level [--timeout SECONDS]
//
// Exit status: 0 when everything matched, 1 on a mismatch, 2 on usage errors.

const assert = require('node:assert/strict')
const { spawn, execFile } = require('child_process')
const { ManyLevelGuest } = require('many-level')
const { parseArgs, UsageError, attachGuest, deadline } = require('./lib/common')

const USAGE = 'usage: node-guest-watch.js --connect ADDR --many-level PATH [--timeout SECONDS]'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// `many-level ARGS...`, resolving to its stdout; rejects on a non-zero exit.
function runMl (ml, args) {
  return new Promise((resolve, reject) => {
    execFile(ml, args, { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`many-level ${args.join(' ')}: ${err.message} ${stderr}`))
      resolve(stdout)
    })
  })
}

// A `many-level watch` in the background, its stdout collected.
function startWatcher (ml, name, args) {
  const child = spawn(ml, ['watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const w = { name, child, stdout: '', stderr: '', exit: null }
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', (d) => { w.stdout += d })
  child.stderr.on('data', (d) => { w.stderr += d })
  w.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { w.exit = { code, signal }; resolve(w.exit) })
  })
  process.on('exit', () => { if (w.exit === null) child.kill('SIGKILL') })
  return w
}

// Waits until the watcher has printed `count` whole lines (or has exited).
async function waitLines (w, count, ms = 30000) {
  const end = Date.now() + ms
  for (;;) {
    const lines = w.stdout.split('\n').length - 1
    if (lines >= count) return
    if (w.exit !== null) {
      throw new Error(`watcher ${w.name} exited (${JSON.stringify(w.exit)}) after ${lines} of ${count} lines; stderr: ${w.stderr}`)
    }
    if (Date.now() > end) {
      throw new Error(`watcher ${w.name} printed ${lines} of ${count} lines within ${ms} ms:\n${w.stdout}`)
    }
    await sleep(20)
  }
}

// SIGINT: the watcher must exit 0 and say nothing on stderr.
async function stopWatcher (w) {
  w.child.kill('SIGINT')
  const exit = await w.exited
  assert.deepEqual(exit, { code: 0, signal: null }, `watcher ${w.name} on SIGINT (stderr: ${w.stderr})`)
  assert.equal(w.stderr, '', `watcher ${w.name} wrote to stderr`)
}

// The lines `many-level watch --json` prints for [seq, type, key, value].
// JSON.stringify writes the object's members in the order given, as the
// watcher does (seq, type, key, value or value_hex).
function jsonLines (entries) {
  return entries.map(([seq, type, key, value]) => {
    const o = { seq, type, key }
    if (type === 'put') {
      if (Buffer.isBuffer(value)) o.value_hex = value.toString('hex')
      else o.value = value
    }
    return JSON.stringify(o) + '\n'
  }).join('')
}

function expectOutput (w, expected) {
  if (w.stdout === expected) return
  const got = w.stdout.split('\n')
  const want = expected.split('\n')
  let i = 0
  while (i < got.length && got[i] === want[i]) i++
  throw new Error(`watcher ${w.name}: output differs from line ${i + 1}\n` +
    `expected: ${JSON.stringify(want[i])}\n` +
    `got:      ${JSON.stringify(got[i])}\n` +
    `---- expected ----\n${expected.slice(0, 4000)}\n---- got ----\n${w.stdout.slice(0, 4000)}`)
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--many-level': 'string',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.connect || !opts.manyLevel) throw new UsageError('--connect and --many-level are required')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`node-guest-watch: ${err.message}\n${USAGE}`)
    return 2
  }
  deadline((opts.timeout || 100) * 1000, 'node-guest-watch')
  const ml = opts.manyLevel
  const C = ['--connect', opts.connect]

  // The host is fresh: nothing committed yet, so sequence numbers start at 1.
  const before = JSON.parse(await runMl(ml, ['stats', '--json', ...C]))
  assert.equal(before.seq, 0, 'the host must be fresh (seq 0)')

  const range = startWatcher(ml, 'range [b, d)', ['--json', '--gte', 'b', '--lt', 'd', ...C])
  const all = startWatcher(ml, 'everything', ['--json', ...C])

  // Both watches are registered on the host before the first write.
  for (let end = Date.now() + 30000; ;) {
    const stats = JSON.parse(await runMl(ml, ['stats', '--json', ...C]))
    const watches = stats.connections.reduce((n, c) => n + c.watches, 0)
    if (watches === 2) break
    for (const w of [range, all]) {
      if (w.exit !== null) throw new Error(`watcher ${w.name} exited early: ${JSON.stringify(w.exit)} ${w.stderr}`)
    }
    if (Date.now() > end) throw new Error(`the host never showed 2 watches: ${JSON.stringify(stats)}`)
    await sleep(50)
  }
  console.log('# both watches are registered on the host')

  const db = new ManyLevelGuest()
  let lost = false
  attachGuest(db, opts.connect, () => {
    if (db.status !== 'closing' && db.status !== 'closed') lost = true
  })
  await db.open()
  console.log(`# Node guest (many-level ${require('many-level/package.json').version}) connected to ${opts.connect}`)

  const utf8Value = 'värde ✓ 値 🔑 "quoted"\ttab\\'
  const binary = Buffer.from([0xff, 0x00, 0x01, 0x80, 0xfe])
  const big = Array.from({ length: 100 * 1024 }, (_, i) => String.fromCharCode(97 + (i * 7) % 26)).join('')
  const bin = { valueEncoding: 'buffer' }

  await db.put('b1', 'one') //                                         seq 1
  await db.put('a-outside', 'x') //                                    seq 2 (outside)
  await db.put('c1', utf8Value) //                                     seq 3
  await db.put('b2', binary, bin) //                                   seq 4
  await db.batch([ //                                                  seq 5, one commit
    { type: 'put', key: 'b3', value: 'three' },
    { type: 'del', key: 'b1' },
    { type: 'put', key: 'z', value: 'outside' },
    { type: 'put', key: 'c2', value: big }
  ])
  await db.del('c1') //                                                seq 6
  await db.del('a-outside') //                                         seq 7 (outside)
  await db.put('b1', 'again') //                                       seq 8
  await db.clear({ gte: 'b2', lt: 'c' }) //                            seq 9: b2, b3
  await db.clear() //                                                  seq 10: b1, c2, z
  await db.put('zz', 'outside-last') //                                seq 11 (outside)
  await db.put('c9', 'end') //                                         seq 12

  // The Node guest reads back what it wrote, as a sanity check.
  assert.deepEqual(await db.keys().all(), ['c9', 'zz'])

  // The writer was the Node guest: a connection without the extension.
  const stats = JSON.parse(await runMl(ml, ['stats', '--json', ...C]))
  assert.equal(stats.seq, 12, 'the host committed 12 times')
  const plain = stats.connections.filter((c) => c.extended === false)
  assert.equal(plain.length, 1, `one connection without the extension (the Node guest): ${JSON.stringify(stats.connections)}`)
  assert.ok(plain[0].requests >= 12, `the Node guest's connection made the writes: ${JSON.stringify(plain[0])}`)

  const expectedAll = jsonLines([
    [1, 'put', 'b1', 'one'],
    [2, 'put', 'a-outside', 'x'],
    [3, 'put', 'c1', utf8Value],
    [4, 'put', 'b2', binary],
    [5, 'put', 'b3', 'three'],
    [5, 'del', 'b1'],
    [5, 'put', 'z', 'outside'],
    [5, 'put', 'c2', big],
    [6, 'del', 'c1'],
    [7, 'del', 'a-outside'],
    [8, 'put', 'b1', 'again'],
    [9, 'del', 'b2'],
    [9, 'del', 'b3'],
    [10, 'del', 'b1'],
    [10, 'del', 'c2'],
    [10, 'del', 'z'],
    [11, 'put', 'zz', 'outside-last'],
    [12, 'put', 'c9', 'end']
  ])
  const expectedRange = jsonLines([
    [1, 'put', 'b1', 'one'],
    [3, 'put', 'c1', utf8Value],
    [4, 'put', 'b2', binary],
    [5, 'put', 'b3', 'three'],
    [5, 'del', 'b1'],
    [5, 'put', 'c2', big],
    [6, 'del', 'c1'],
    [8, 'put', 'b1', 'again'],
    [9, 'del', 'b2'],
    [9, 'del', 'b3'],
    [10, 'del', 'b1'],
    [10, 'del', 'c2'],
    [12, 'put', 'c9', 'end']
  ])

  const count = (text) => text.split('\n').length - 1
  await waitLines(all, count(expectedAll))
  await waitLines(range, count(expectedRange))
  // The last line is in; anything further would be a stray delivery.
  await sleep(200)
  await stopWatcher(all)
  await stopWatcher(range)
  expectOutput(all, expectedAll)
  console.log(`ok - the watch on everything got all ${count(expectedAll)} operations of 12 commits, in order`)
  expectOutput(range, expectedRange)
  console.log(`ok - the watch on [b, d) got its ${count(expectedRange)} operations and nothing outside its range`)

  assert.equal(lost, false, 'the Node guest lost its connection')
  await db.close()
  console.log('node-guest-watch: ok')
  return 0
}

// process.exit: watchers still running after a failure must not keep this
// process alive (the 'exit' handlers kill them).
main().then((code) => process.exit(code), (err) => {
  console.error(`node-guest-watch: FAILED: ${(err && err.stack) || err}`)
  process.exit(1)
})
