#!/usr/bin/env node
'use strict'

// Connects many idle many-level guests to a host and reports the host's
// memory while they are all connected:
//
//   node idle-guests.js --connect ADDR --pid HOST_PID [--guests 1000]
//                       [--impl NAME] [--settle-ms 1000] [--timeout SECS]
//
// Each guest is a many-level 2.0.0 guest on a connection of its own; each
// makes one round trip (a get of a key that is not there) so that the host
// has surely set up its session, then stays idle. Once every guest has
// answered and --settle-ms has passed, it reads VmRSS and VmHWM from
// /proc/HOST_PID/status and prints one JSON line:
//
//   {"impl":..., "metric":"idle guests", "guests":1000, "vmrss_kb":..., "vmhwm_kb":...}
//
// then closes every guest and exits. Raise `ulimit -n` for it and the host.

const fs = require('fs')
const path = require('path')

const interopDir = path.join(__dirname, '..', 'interop')
function load (name) {
  return require(require.resolve(name, { paths: [interopDir, __dirname] }))
}
const { ManyLevelGuest } = load('many-level')
const { parseArgs, UsageError, attachGuest, deadline } = require(path.join(interopDir, 'lib', 'common'))

const USAGE = 'usage: idle-guests.js --connect ADDR --pid HOST_PID [--guests N] [--impl NAME] [--settle-ms MS] [--timeout SECS]'

function memoryOf (pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)
    return m ? Number(m[1]) : null
  }
  return { vmrss_kb: field('VmRSS'), vmhwm_kb: field('VmHWM') }
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--pid': 'number',
      '--guests': 'number',
      '--impl': 'string',
      '--settle-ms': 'number',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.connect || !opts.pid) throw new UsageError('--connect and --pid are required')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`idle-guests: ${err.message}\n${USAGE}`)
    return 2
  }
  deadline((opts.timeout || 120) * 1000, 'idle-guests')
  const count = opts.guests || 1000
  const settle = opts.settleMs === undefined ? 1000 : opts.settleMs

  const before = memoryOf(opts.pid)
  const guests = []
  let lost = 0
  // Connect in waves so that the host's listen backlog is never the limit.
  const WAVE = 100
  for (let start = 0; start < count; start += WAVE) {
    const wave = []
    for (let i = start; i < Math.min(count, start + WAVE); i++) {
      const db = new ManyLevelGuest()
      const socket = attachGuest(db, opts.connect, () => { lost++ })
      guests.push({ db, socket })
      wave.push(db.open().then(() => db.get('idle-guest-probe')).catch((err) => {
        // abstract-level 1.x rejects a get of a missing key: that is the answer.
        if (err.code !== 'LEVEL_NOT_FOUND') throw err
      }))
    }
    await Promise.all(wave)
  }
  if (lost) throw new Error(`${lost} of ${count} connections closed`)
  await new Promise((resolve) => setTimeout(resolve, settle))
  if (lost) throw new Error(`${lost} of ${count} connections closed while idle`)

  const during = memoryOf(opts.pid)
  process.stdout.write(JSON.stringify({
    impl: opts.impl || 'host',
    metric: 'idle guests',
    guests: count,
    vmrss_kb: during.vmrss_kb,
    vmhwm_kb: during.vmhwm_kb,
    vmrss_before_kb: before.vmrss_kb
  }) + '\n')

  for (const { socket } of guests) socket.destroy()
  return 0
}

main().then((code) => {
  process.exitCode = code
}, (err) => {
  console.error('idle-guests: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
