#!/usr/bin/env node
'use strict'

// A diagnostic for docs/BENCHMARKS.md: how big are the iterator data frames a
// host sends to a many-level 2.0.0 (Node) guest, and how fast does that guest
// iterate them?
//
//   node frame-sizes.js --connect ADDR [--count 200000] [--value-length 100]
//
// It clears the host's database, writes --count entries (keys as in the
// benchmark, values of --value-length bytes) in batches of 1000, iterates
// them all with nextv(1000), and prints one JSON line:
//
//   {"entries":..., "secs":..., "ops_per_s":..., "frames":..., "min":..., "median":..., "max":...}
//
// with the sizes in bytes of the iteratorData frames seen on the wire. The
// reference guest takes entries with Array.prototype.shift(), which V8 makes
// O(n) on arrays of more than about 16k elements, so frames of many small
// entries make it slow.

const path = require('path')

const interopDir = path.join(__dirname, '..', 'interop')
function load (name) {
  return require(require.resolve(name, { paths: [interopDir, __dirname] }))
}
const { ManyLevelGuest } = load('many-level')
const { pipeline, PassThrough } = load('readable-stream')
const { parseArgs, UsageError, connectSocket, deadline } = require(path.join(interopDir, 'lib', 'common'))

const USAGE = 'usage: frame-sizes.js --connect ADDR [--count N] [--value-length BYTES] [--timeout SECS]'
const ITERATOR_DATA = 1 // many-level's output tag of an iteratorData frame

// Watches the host-to-guest bytes: varint length prefix, then tag and message.
function frameTap (sizes) {
  let pending = Buffer.alloc(0)
  const tap = new PassThrough()
  tap.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    for (;;) {
      let length = 0
      let shift = 0
      let i = 0
      for (; i < pending.length; i++) {
        const byte = pending[i]
        length += (byte & 0x7f) * 2 ** shift
        shift += 7
        if (!(byte & 0x80)) break
      }
      if (i >= pending.length || pending.length < i + 1 + length) break
      if (length > 0 && pending[i + 1] === ITERATOR_DATA) sizes.push(length)
      pending = pending.subarray(i + 1 + length)
    }
  })
  return tap
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--count': 'number',
      '--value-length': 'number',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.connect) throw new UsageError('--connect ADDR is required')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`frame-sizes: ${err.message}\n${USAGE}`)
    return 2
  }
  deadline((opts.timeout || 300) * 1000, 'frame-sizes')
  const count = opts.count || 200000
  const value = 'v'.repeat(opts.valueLength === undefined ? 100 : opts.valueLength)

  const sizes = []
  const db = new ManyLevelGuest()
  const socket = connectSocket(opts.connect)
  socket.setNoDelay(true)
  pipeline(socket, frameTap(sizes), db.createRpcStream(), socket, () => {})
  await db.open()
  await db.clear()
  for (let start = 0; start < count; start += 1000) {
    const ops = []
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      ops.push({ type: 'put', key: 'k' + String(i).padStart(15, '0'), value })
    }
    await db.batch(ops)
  }

  const start = process.hrtime.bigint()
  const iterator = db.iterator()
  let seen = 0
  for (let entries = await iterator.nextv(1000); entries.length; entries = await iterator.nextv(1000)) {
    seen += entries.length
  }
  await iterator.close()
  const secs = Number(process.hrtime.bigint() - start) / 1e9

  sizes.sort((a, b) => a - b)
  process.stdout.write(JSON.stringify({
    entries: seen,
    secs,
    ops_per_s: seen / secs,
    frames: sizes.length,
    min: sizes[0],
    median: sizes[sizes.length >> 1],
    max: sizes[sizes.length - 1]
  }) + '\n')
  await db.close()
  socket.destroy()
  return seen === count ? 0 : 1
}

main().then((code) => {
  process.exitCode = code
}, (err) => {
  console.error('frame-sizes: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
