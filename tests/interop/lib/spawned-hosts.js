'use strict'

// Hosts spawned as child processes, one per database open, talked to over
// their stdin/stdout: what abstract-suite.js --spawn-host uses to give every
// factory() database a host (and a database file) of its own.
//
//   const pool = createHostPool({ command: 'many-level serve --stdio --db @DB@', dir })
//   const host = pool.start('/dir/db-1.sqlite', 'db 1')  // spawns the command
//   host.duplex                 // a Duplex over the child's stdout/stdin
//   await pool.stop(host)       // end its stdin, wait for it to exit
//   await pool.stopAll()        // the same for every host still running
//   pool.leftovers()            // processes of ours still around (should be none)
//
// The command runs through /bin/sh (`exec COMMAND`), with @DB@ replaced by
// the shell-quoted database path, in a process group of its own (so that a
// stop can signal whatever it started too). Stopping a host is polite first:
// its stdin is ended, a stdio host sees end of input, closes its database and
// exits; only if it has not exited after exitTimeoutMs does it get SIGTERM,
// then SIGKILL. Destroying host.duplex (which is what a guest's close() does
// to its remote stream) also ends the stdin; what the host still writes is
// read and dropped, so that it never blocks on (or fails writing to) a pipe
// nobody reads. A host that exits other than with status 0 after its stdin
// ended, or before that, counts as abnormal: its last stderr lines are printed
// (prefixed with '#', TAP comments).

const fs = require('fs')
const path = require('path')
const { spawn } = require('child_process')
const { Duplex } = require('readable-stream')

const STDERR_TAIL_LINES = 30

function shellQuote (s) {
  return `'${String(s).replace(/'/g, "'\\''")}'`
}

function commandFor (command, file) {
  return command.split('@DB@').join(shellQuote(file))
}

// A Duplex whose writable side is the child's stdin, readable side its stdout.
class ChildDuplex extends Duplex {
  constructor (child) {
    super()
    this.child = child
    child.stdout.on('data', (chunk) => {
      // Once destroyed, what the child still writes is dropped.
      if (this.destroyed) return
      if (!this.push(chunk)) child.stdout.pause()
    })
    child.stdout.on('end', () => { if (!this.destroyed) this.push(null) })
    child.stdout.on('error', (err) => this.destroy(err))
    // EPIPE and the like: the host is gone. The guest sees its stream fail.
    child.stdin.on('error', (err) => this.destroy(err))
  }

  _read () {
    this.child.stdout.resume()
  }

  _write (chunk, encoding, callback) {
    this.child.stdin.write(chunk, (err) => callback(err || null))
  }

  _final (callback) {
    this.child.stdin.end()
    callback()
  }

  _destroy (err, callback) {
    // End of input for the host (not a destroy of the pipe: what was written
    // still reaches it). Keep draining its stdout.
    try { if (!this.child.stdin.destroyed) this.child.stdin.end() } catch (_) {}
    this.child.stdout.resume()
    callback(err)
  }
}

function createHostPool ({ command, dir, exitTimeoutMs = 5000, inheritStderr = false, log = console.log }) {
  const running = new Set()
  const all = [] // every host ever started, for the final accounting
  const stats = { spawned: 0, clean: 0, abnormal: 0, unexpected: 0, forced: 0, peak: 0 }
  const abnormal = [] // descriptions, for the summary

  function signalGroup (host, signal) {
    const child = host.child
    if (host.exited) return
    try {
      process.kill(-child.pid, signal)
    } catch (_) {
      try { child.kill(signal) } catch (_) {}
    }
  }

  function start (file, label) {
    const line = commandFor(command, file)
    const child = spawn('/bin/sh', ['-c', `exec ${line}`], {
      stdio: ['pipe', 'pipe', inheritStderr ? 'inherit' : 'pipe'],
      detached: true // a process group of its own, see signalGroup()
    })
    const host = {
      id: ++stats.spawned,
      label,
      file,
      child,
      pid: child.pid,
      duplex: null,
      stopRequested: false,
      exited: false,
      closed: false,
      forced: null,
      code: null,
      signal: null,
      spawnError: null,
      stderrTail: [],
      done: null
    }
    all.push(host)
    running.add(host)
    stats.peak = Math.max(stats.peak, running.size)

    if (child.stderr) {
      let partial = ''
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (text) => {
        const lines = (partial + text).split('\n')
        partial = lines.pop()
        host.stderrTail.push(...lines)
        if (host.stderrTail.length > STDERR_TAIL_LINES) host.stderrTail.splice(0, host.stderrTail.length - STDERR_TAIL_LINES)
      })
      child.stderr.on('end', () => { if (partial) host.stderrTail.push(partial) })
      child.stderr.on('error', () => {})
    }

    host.duplex = new ChildDuplex(child)
    // The guest's pipeline reports errors to a no-op callback; nothing more here.
    host.duplex.on('error', () => {})

    host.done = new Promise((resolve) => {
      child.on('error', (err) => {
        // spawn() itself failed: there will be no 'exit', maybe a 'close'.
        host.spawnError = err
        host.exited = true
        finish()
      })
      child.on('exit', (code, signal) => {
        host.exited = true
        host.code = code
        host.signal = signal
        if (!host.stopRequested) {
          // Died while its guest was still using it: make the guest notice.
          host.duplex.destroy(new Error(`host exited (${describeExit(host)}) while its database was open`))
        }
      })
      // 'close': exited and its stdio is closed (so the stderr tail is whole).
      child.on('close', () => finish())
      function finish () {
        if (host.closed) return
        host.closed = true
        running.delete(host)
        account(host)
        resolve()
      }
    })
    return host
  }

  function describeExit (host) {
    if (host.spawnError) return `could not spawn: ${host.spawnError.message}`
    if (host.signal) return `signal ${host.signal}`
    return `status ${host.code}`
  }

  function account (host) {
    const ok = host.stopRequested && !host.forced && !host.spawnError && host.code === 0
    if (ok) {
      stats.clean++
      return
    }
    stats.abnormal++
    if (!host.stopRequested) stats.unexpected++
    if (host.forced) stats.forced++
    const why = [
      `host #${host.id} (${host.label}, pid ${host.pid}) ended with ${describeExit(host)}`,
      host.stopRequested ? (host.forced ? `after ${host.forced} (it did not exit at end of input)` : 'after its guest closed') : 'while its guest was open',
      `command: ${commandFor(command, host.file)}`
    ].join(', ')
    abnormal.push(why)
    log(`# harness: ${why}`)
    for (const l of host.stderrTail) log(`#   stderr: ${l}`)
  }

  // End the host's stdin and wait until it has exited and been reaped; after
  // exitTimeoutMs SIGTERM its group, after as long again SIGKILL it.
  function stop (host) {
    if (host.closed) return Promise.resolve()
    if (!host.stopRequested) {
      host.stopRequested = true
      host.duplex.destroy()
      try { if (!host.child.stdin.destroyed) host.child.stdin.end() } catch (_) {}
    }
    if (host.stopping) return host.stopping
    const timers = []
    timers.push(setTimeout(() => {
      if (host.exited) return
      host.forced = 'SIGTERM'
      signalGroup(host, 'SIGTERM')
    }, exitTimeoutMs))
    timers.push(setTimeout(() => {
      if (host.exited) return
      host.forced = 'SIGKILL'
      signalGroup(host, 'SIGKILL')
    }, exitTimeoutMs * 2))
    timers.push(setTimeout(() => {
      // Exited but its stdio is still held open (by something it started?):
      // stop waiting for it. leftovers() reports such processes.
      if (host.closed) return
      log(`# harness: host #${host.id} (pid ${host.pid}) still not closed ${exitTimeoutMs * 3} ms after its stop; giving up on it`)
      for (const s of [host.child.stdin, host.child.stdout, host.child.stderr]) if (s) s.destroy()
      host.forced = host.forced || 'timeout'
      if (!host.exited) host.exited = true
      // finish() via 'close' may still come; make sure the promise settles.
      running.delete(host)
      if (!host.closed) { host.closed = true; account(host) }
      host.resolveLate()
    }, exitTimeoutMs * 3))
    host.stopping = new Promise((resolve) => {
      host.resolveLate = resolve
      host.done.then(resolve)
    }).finally(() => { for (const t of timers) clearTimeout(t) })
    return host.stopping
  }

  function stopAll () {
    return Promise.all([...running].map(stop))
  }

  // Last resort when this process exits without stopping its hosts
  // (deadline, uncaught exception): they also see end of input when our end
  // of their stdin pipe goes away.
  function killAllSync (signal = 'SIGKILL') {
    for (const host of running) signalGroup(host, signal)
  }

  // Processes that outlived their stop: our own children (a zombie among
  // them means one was never reaped) and anything whose command line names
  // the temporary directory. Linux only (/proc); elsewhere an empty list.
  function leftovers () {
    const found = []
    let pids
    try {
      pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))
    } catch (_) {
      return found
    }
    for (const pid of pids) {
      if (Number(pid) === process.pid) continue
      let stat, cmdline
      try {
        stat = fs.readFileSync(path.join('/proc', pid, 'stat'), 'utf8')
        cmdline = fs.readFileSync(path.join('/proc', pid, 'cmdline'), 'utf8').split('\0').join(' ').trim()
      } catch (_) {
        continue
      }
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const state = rest[0]
      const ppid = Number(rest[1])
      if (ppid === process.pid || (dir && cmdline.includes(dir))) {
        found.push({ pid: Number(pid), state, ppid, cmdline })
      }
    }
    return found
  }

  return { start, stop, stopAll, killAllSync, leftovers, stats, abnormal, running, all }
}

module.exports = { createHostPool, commandFor, shellQuote }
