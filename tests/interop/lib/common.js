'use strict'

// Shared helpers of the Node interop programs: argument parsing, addresses,
// connecting a guest, the seed data format, and a hard deadline.

const net = require('net')
const { spawn } = require('child_process')
const { pipeline } = require('readable-stream')

// parseArgs(argv, spec): spec maps '--name' to 'string' | 'number' | 'boolean'.
// Unknown options and missing values throw, so a typo never passes silently.
function parseArgs (argv, spec) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]
    let inline = null
    const eq = arg.indexOf('=')
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1)
      arg = arg.slice(0, eq)
    }
    const type = spec[arg]
    if (type === undefined) throw new UsageError(`unknown argument: ${argv[i]}`)
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase())
    if (type === 'boolean') {
      out[name] = inline === null ? true : !/^(0|false|no)$/i.test(inline)
      continue
    }
    let value = inline
    if (value === null) {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`)
      value = argv[++i]
    }
    if (type === 'number') {
      const n = Number(value)
      if (!Number.isFinite(n)) throw new UsageError(`${arg} needs a number, got ${value}`)
      value = n
    }
    out[name] = value
  }
  return out
}

class UsageError extends Error {}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\]|localhost)$/

// parseAddress('tcp://127.0.0.1:9000') -> { kind: 'tcp', host, port }
// parseAddress('unix:/tmp/x.sock' | 'unix:///tmp/x.sock') -> { kind: 'unix', path }
// Only loopback TCP addresses are accepted: these programs are test tools.
function parseAddress (addr) {
  if (typeof addr !== 'string') throw new UsageError('missing address')
  if (addr.startsWith('unix:')) {
    let p = addr.slice(5)
    if (p.startsWith('//')) p = p.slice(2)
    if (!p) throw new UsageError(`bad unix address: ${addr}`)
    return { kind: 'unix', path: p }
  }
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(addr)
  if (!m) throw new UsageError(`bad address (want tcp://127.0.0.1:PORT or unix:PATH): ${addr}`)
  const host = m[1].replace(/^\[|\]$/g, '')
  if (!LOOPBACK.test(host)) throw new UsageError(`refusing non-loopback address: ${addr}`)
  const port = Number(m[2])
  if (port > 65535) throw new UsageError(`bad port: ${addr}`)
  return { kind: 'tcp', host, port }
}

function formatAddress (a) {
  if (a.kind === 'unix') return `unix:${a.path}`
  const host = a.host.includes(':') ? `[${a.host}]` : a.host
  return `tcp://${host}:${a.port}`
}

// A new socket to addr (a string or a parsed address).
function connectSocket (addr) {
  const a = typeof addr === 'string' ? parseAddress(addr) : addr
  return a.kind === 'unix' ? net.connect({ path: a.path }) : net.connect({ host: a.host, port: a.port })
}

// Pipe a guest over a new socket. Returns the socket; onclose runs once when
// the connection is over (for whatever reason).
function attachGuest (guest, addr, onclose, rpcOptions) {
  const socket = connectSocket(addr)
  socket.setNoDelay(true)
  pipeline(socket, guest.createRpcStream(rpcOptions), socket, (err) => {
    if (onclose) onclose(err)
  })
  return socket
}

// Spawn `command` (a shell command line) and pipe the guest over its
// stdin/stdout. The child gets a process group of its own so that it and
// anything it started are killed on exit, even when this process fails.
function attachGuestToCommand (guest, command, onclose) {
  const child = spawn('/bin/sh', ['-c', `exec ${command}`], {
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: true
  })
  const kill = (signal) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    try { process.kill(-child.pid, signal) } catch (_) {}
  }
  process.on('exit', () => kill('SIGKILL'))
  pipeline(child.stdout, guest.createRpcStream(), child.stdin, (err) => {
    if (onclose) onclose(err)
  })
  child.on('error', (err) => {
    console.error(`cannot spawn ${command}: ${err.message}`)
  })
  return {
    child,
    // Polite stop: end its stdin (a stdio host exits on EOF), then TERM, then KILL.
    stop (graceMs = 2000) {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const t1 = setTimeout(() => kill('SIGTERM'), graceMs)
        const t2 = setTimeout(() => kill('SIGKILL'), graceMs * 2)
        child.once('exit', () => { clearTimeout(t1); clearTimeout(t2); resolve() })
        try { child.stdin.end() } catch (_) {}
      })
    }
  }
}

// The seed data that node-host.js --seed N writes and retry-iterate.js checks:
// key i is "seed:" + i as 8 decimal digits, value is "value:" + i padded to
// VALUE_LENGTH bytes with '.', so that keys sort in numeric order and a few
// thousand entries span many data frames.
const SEED_PREFIX = 'seed:'
const VALUE_LENGTH = 100

function seedKey (i) {
  return SEED_PREFIX + String(i).padStart(8, '0')
}

function seedValue (i) {
  return ('value:' + i).padEnd(VALUE_LENGTH, '.')
}

function seedIndex (key) {
  const s = Buffer.isBuffer(key) ? key.toString('utf8') : String(key)
  if (!s.startsWith(SEED_PREFIX)) return -1
  return Number(s.slice(SEED_PREFIX.length))
}

// Write seed entries 0..n-1 with batches of `chunk` through db (any
// abstract-level database; utf8 encodings).
async function writeSeed (db, n, chunk = 1000) {
  for (let start = 0; start < n; start += chunk) {
    const ops = []
    for (let i = start; i < Math.min(n, start + chunk); i++) {
      ops.push({ type: 'put', key: seedKey(i), value: seedValue(i), keyEncoding: 'utf8', valueEncoding: 'utf8' })
    }
    await db.batch(ops)
  }
}

// Kill the process if it is still running after ms: every program is bounded.
function deadline (ms, what) {
  const timer = setTimeout(() => {
    console.error(`${what}: timed out after ${ms} ms`)
    process.exit(124)
  }, ms)
  timer.unref()
  return timer
}

module.exports = {
  parseArgs,
  UsageError,
  parseAddress,
  formatAddress,
  connectSocket,
  attachGuest,
  attachGuestToCommand,
  SEED_PREFIX,
  seedKey,
  seedValue,
  seedIndex,
  writeSeed,
  deadline
}
