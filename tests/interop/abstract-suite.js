#!/usr/bin/env node
'use strict'

// abstract-level 1.x's whole compliance suite (require('abstract-level/test'))
// run with the reference guest (many-level 2.0.0) against remote hosts, in
// one of two modes:
//
//   node abstract-suite.js --spawn-host "COMMAND with @DB@" [--tmpdir DIR]
//                          [--keep-tmp] [--host-stderr] [--host-exit-timeout SECONDS]
//                          [--retry] [--grep REGEX] [--no-skips] [--fail-on-skip] [--timeout SECONDS]
//   node abstract-suite.js --connect tcp://127.0.0.1:PORT|unix:PATH
//                          [--retry] [--grep REGEX] [--no-skips] [--fail-on-skip] [--timeout SECONDS]
//
// --retry makes the guests retrying ones (supports.snapshots is then false,
// so the suite runs iterator-no-snapshot-test instead of the snapshot one).
// --grep runs only the tests whose name matches (others show as skipped;
// tests that depend on a skipped setUp test then fail). --no-skips runs the
// tests of SHARED_DB_SKIPS and RETRY_SKIPS too, to see them fail.
// --fail-on-skip fails the run if anything at all was skipped (so that a
// "whole suite, nothing skipped" test cannot quietly start skipping).
// --timeout bounds the whole run (default 900 s).
//
// ---- --spawn-host: a host process, and a database file, per database ------
//
// What many-level's own test/abstract.js does, with processes: every
// factory() database gets a file of its own, DIR/db-N.db (DIR a new
// temporary directory under --tmpdir, default the system's; removed at the
// end unless --keep-tmp), and the guest gets many-level's `_remote` option,
// which the reference guest calls on every open() and pipes its rpc stream
// to. Here `_remote` spawns COMMAND (through /bin/sh, @DB@ replaced by the
// shell-quoted file path), e.g.
//     many-level serve --stdio --db @DB@
//     node node-host.js --stdio --backend classic --path @DB@
// and returns a duplex stream over its stdin/stdout. Closing the guest ends
// the host's stdin: a stdio host then closes its database and exits, and
// close() completes only once the host has exited (and been reaped), so
// reopening the same database spawns a new host on the same file, which
// must find the data written before the close (supports.permanence). A host
// that has not exited --host-exit-timeout seconds (default 5) after the end
// of its input gets SIGTERM, as long again later SIGKILL. Every database
// being truly its own, nothing is skipped (the SHARED_DB_SKIPS below do not
// apply), except RETRY_SKIPS with --retry (without --no-skips). Before the
// suite, a preflight host is started and stopped, so a broken COMMAND fails
// at once. At the end the harness closes the databases the suite left open
// (its second run, on sublevels, never closes their parents), stops every
// host still running, and fails the run if any host exited with other than
// status 0 at end of input, or if any process of its own is still around.
// Hosts' stderr is kept (the last lines are printed for a host that ended
// badly) unless --host-stderr passes it through.
//
// ---- --connect: one shared host ------------------------------------------
//
// Here there is one remote host with one database, and the suite wants a
// database of its own for every factory() call (a long-lived one made in a
// "setUp" test is used by later tests, while other tests make and close
// short-lived ones). So each factory() database is a *virtual* database:
//   - each open of it connects a new socket to the host (through the same
//     `_remote` hook, so reopening works);
//   - the harness keeps a stack of the open databases; the remote database
//     holds the contents of the one on top (the most recently opened);
//   - opening a database saves the remote contents as the old top's, clears
//     the remote database and loads the new one's contents (empty at first);
//     closing the top saves its contents and loads the next one's back.
// The swap runs over a separate admin connection (iterator().all(), clear(),
// batch()) before open() or close() completes, so no test operation races it,
// and every test has a tape teardown that waits for the opens and closes it
// started (a test may end on t.plan() while its db.close() is still going).
// The suite's second run, on sublevels (factory().sublevel('test')), leaves
// the parent guests open: that sublevel's own open and close do the swap.
// What this cannot give is isolation between databases that are used at the
// same time: SHARED_DB_SKIPS lists the tests that need it; they are reported
// as skipped (TAP "# SKIP"), not dropped. The host must be dedicated to this
// run: its database is cleared again and again. This mode is what tests a
// host serving many connections at once over a socket.
//
// Output is tape's TAP, then "# ..." lines about the databases and hosts,
// then a closing line
//   abstract-suite: N passed, N failed, N skipped (assertions; N tests, N skipped) in S s
// Exit status 0 only without failures (and, with --spawn-host, with every
// host having exited cleanly and no process left behind).

const fs = require('fs')
const os = require('os')
const path = require('path')
const test = require('tape')
const suite = require('abstract-level/test')
const { ManyLevelGuest } = require('many-level')
const { pipeline } = require('readable-stream')
const { parseArgs, UsageError, parseAddress, connectSocket } = require('./lib/common')
const { createHostPool } = require('./lib/spawned-hosts')

const USAGE = 'usage: abstract-suite.js (--spawn-host "COMMAND with @DB@" [--tmpdir DIR] [--keep-tmp] [--host-stderr]\n' +
  '                          [--host-exit-timeout SECONDS] | --connect ADDR)\n' +
  '                          [--retry] [--grep REGEX] [--no-skips] [--fail-on-skip] [--timeout SECONDS]'

// Tests that need two databases open at once with separate contents. With one
// shared remote database (--connect) they cannot pass, whatever the host does.
// With --spawn-host they run.
const SHARED_DB_SKIPS = new Map([
  // db1.put('key') then expects db2.get('key') to fail: db2 is the same remote db.
  ['testCommon.factory() returns a unique database',
    'db1 and db2 share the one remote database']
])

// With --retry only (and without --no-skips): bugs of the reference guest
// itself, whatever the host (the Node reference host fails them the same).
// `runs` says in which of the suite's two runs: 'db' (on factory()
// databases) and/or 'sublevel' (its second run, on factory().sublevel('test')).
const RETRY_SKIPS = new Map([
  // guest.js, Iterator constructor: `if (db[kRetry]) options.keys = true`
  // (a retrying iterator needs keys as bookmarks) mutates the options that
  // it then hands to AbstractIterator, which so believes keys were asked
  // for: iterator({ keys: false }).next() yields the key ('foobatch1')
  // instead of undefined. A sublevel's iterator strips keys itself, so the
  // sublevel run passes and is not skipped; so does db.values() (a separate
  // iterator class).
  ['value-only iterator', {
    runs: ['db'],
    why: 'many-level 2.0.0 guest with retry yields keys from iterator({ keys: false })'
  }]
])

const SUITE_INDEX = /abstract-level[\\/]test[\\/]index\.js/g

// The suite runs itself again on sublevels, with a factory of its own:
// factory().sublevel('test', opts). True when called from there.
function calledBySuiteSublevelFactory (name) {
  return name === 'test' && new RegExp(SUITE_INDEX.source).test(new Error().stack)
}

// Which of the suite's two runs is registering a test: the sublevel run's
// suite() is called from within the first one's, so its tests are
// registered with abstract-level/test/index.js twice on the stack.
function suiteRun () {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 100
  const stack = new Error().stack
  Error.stackTraceLimit = limit
  return (stack.match(SUITE_INDEX) || []).length >= 2 ? 'sublevel' : 'db'
}

// ---- --connect: one shared host, virtual databases --------------------------

function sharedHostMode (opts) {
  const address = opts.address
  const sockets = new Set()
  let databases = 0

  function remote () {
    const socket = connectSocket(address)
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    // An error reaches the guest through its pipeline; nothing more to do.
    socket.on('error', () => {})
    return socket
  }

  // The admin connection that swaps contents in and out of the remote db.
  const admin = new ManyLevelGuest({ keyEncoding: 'buffer', valueEncoding: 'buffer' })
  const adminSocket = connectSocket(address)
  adminSocket.setNoDelay(true)
  adminSocket.on('error', () => {})
  pipeline(adminSocket, admin.createRpcStream(), adminSocket, () => {})

  const stack = [] // open virtual databases, most recently opened last
  let active = null // whose contents the remote database holds
  let swaps = 0
  let chain = Promise.resolve()
  const serialize = (fn) => {
    const next = chain.then(fn)
    chain = next.catch(() => {})
    return next
  }

  async function switchTo (target) {
    if (active === target) return
    if (active) active.entries = await admin.iterator().all()
    await admin.clear()
    if (target && target.entries.length) {
      await admin.batch(target.entries.map(([key, value]) => ({ type: 'put', key, value })))
    }
    active = target
    swaps++
  }

  // Opens and closes in progress: a test may end (t.plan reached) while a
  // close() it started is still going; the next test must not start before
  // that close has swapped the contents back, or its operations would land
  // in the wrong database. settle() runs as tape teardown of every test.
  let inflight = 0
  let idle = []
  const begin = () => { inflight++ }
  const done = () => {
    if (--inflight === 0) {
      const waiters = idle
      idle = []
      for (const resolve of waiters) resolve()
    }
  }
  function settle () {
    const wait = inflight === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve))
    let timer
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => {
        console.log(`# harness: ${inflight} open/close still in progress after 10 s, going on`)
        resolve()
      }, 10000)
    })
    return Promise.race([wait.then(() => chain), timeout]).finally(() => clearTimeout(timer))
  }

  function activate (vdb) {
    return serialize(async () => {
      const i = stack.indexOf(vdb)
      if (i >= 0) stack.splice(i, 1)
      stack.push(vdb)
      await switchTo(vdb)
    })
  }

  function deactivate (vdb) {
    return serialize(async () => {
      const i = stack.indexOf(vdb)
      if (i >= 0) stack.splice(i, 1)
      if (active === vdb) await switchTo(stack.length ? stack[stack.length - 1] : null)
    })
  }

  function factory (options) {
    const db = new ManyLevelGuest({ ...options, retry: !!opts.retry, _remote: remote })
    const vdb = { id: ++databases, entries: [] }
    const open = db._open
    const close = db._close
    let inClose = false

    db._open = function (options, callback) {
      begin()
      open.call(this, options, (err) => {
        if (err) { done(); return callback(err) }
        activate(vdb).then(() => { done(); callback() }, (err) => { done(); callback(err) })
      })
    }

    // The reference _close() calls this._close() again once its stream is
    // finished: let that inner call through untouched.
    db._close = function (callback) {
      if (inClose) return close.call(this, callback)
      inClose = true
      begin()
      close.call(this, (err) => {
        inClose = false
        deactivate(vdb).then(() => { done(); callback(err) }, (e) => { done(); callback(e) })
      })
    }
    // The sublevel run: the sublevel 'test' is what the tests open and
    // close; its parent guest stays open. Make that sublevel's open and
    // close swap the contents as its parent's would.
    const sublevel = db.sublevel
    db.sublevel = function (name, options) {
      const sub = sublevel.call(this, name, options)
      if (calledBySuiteSublevelFactory(name)) {
        const subOpen = sub._open
        const subClose = sub._close
        sub._open = function (options, callback) {
          begin()
          subOpen.call(this, options, (err) => {
            if (err) { done(); return callback(err) }
            activate(vdb).then(() => { done(); callback() }, (err) => { done(); callback(err) })
          })
        }
        sub._close = function (callback) {
          begin()
          subClose.call(this, (err) => {
            deactivate(vdb).then(() => { done(); callback(err) }, (e) => { done(); callback(e) })
          })
        }
      }
      return sub
    }
    return db
  }

  return {
    skips: opts.noSkips ? new Map() : SHARED_DB_SKIPS,
    skipLabel: 'shared remote db',
    factory,
    teardown: settle,
    async preflight () { return true },
    async finish () {
      for (const socket of sockets) socket.destroy()
      adminSocket.destroy()
      return {
        lines: [`# ${databases} databases made by factory(), ${swaps} content swaps, retry: ${!!opts.retry}, host: ${opts.connect}`],
        problems: []
      }
    },
    async abort () {}
  }
}

// ---- --spawn-host: a host process per open, a file per database -------------

function spawnedHostMode (opts) {
  const base = path.resolve(opts.tmpdir || os.tmpdir())
  const dir = fs.mkdtempSync(path.join(base, 'abstract-suite-'))
  const pool = createHostPool({
    command: opts.spawnHost,
    dir,
    exitTimeoutMs: (opts.hostExitTimeout || 5) * 1000,
    inheritStderr: !!opts.hostStderr
  })
  const guests = new Set()
  let databases = 0
  let opens = 0
  let reopens = 0
  let preflightHosts = 0

  // Whatever happens to this process, its hosts must not outlive it. (They
  // would anyway see the end of their input once its pipes close.)
  process.on('exit', () => pool.killAllSync('SIGKILL'))

  function removeDir () {
    if (opts.keepTmp) return
    try { fs.rmSync(dir, { recursive: true, force: true }) } catch (_) {}
  }

  function factory (options) {
    const id = ++databases
    const file = path.join(dir, `db-${id}.db`)
    let host = null // the host of the current open
    let openCount = 0

    function remote () {
      // close() waits for the previous host to exit; should one still run
      // (it cannot, but), stop it rather than have two hosts on one file.
      if (host && !host.closed) pool.stop(host)
      openCount++
      opens++
      if (openCount > 1) reopens++
      host = pool.start(file, `database ${id}, open ${openCount}`)
      return host.duplex
    }

    const db = new ManyLevelGuest({ ...options, retry: !!opts.retry, _remote: remote })
    guests.add(db)
    const close = db._close
    let inClose = false

    // The reference _close() aborts requests and destroys its rpc stream
    // (which, through the guest's pipeline, destroys host.duplex: end of
    // the host's input), then calls this._close() again once the stream is
    // finished: let that inner call through. Complete only once the host
    // has exited, so that the next open's host finds the file closed.
    db._close = function (callback) {
      if (inClose) return close.call(this, callback)
      inClose = true
      close.call(this, (err) => {
        inClose = false
        const h = host
        host = null
        const stopped = h ? pool.stop(h) : Promise.resolve()
        stopped.then(() => callback(err), () => callback(err))
      })
    }
    return db
  }

  async function closeGuests (ms) {
    const open = [...guests].filter((db) => db.status === 'open' || db.status === 'opening')
    let timer
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(false), ms) })
    const closed = Promise.all(open.map((db) => db.close().catch(() => {}))).then(() => true)
    const ok = await Promise.race([closed, timeout])
    clearTimeout(timer)
    return { count: open.length, ok }
  }

  return {
    skips: new Map(), // nothing needs skipping here
    skipLabel: '',
    factory,
    teardown: null,

    // Start and stop one host before the suite: a broken command fails here.
    async preflight () {
      preflightHosts++
      const host = pool.start(path.join(dir, 'preflight.db'), 'preflight')
      await pool.stop(host)
      if (pool.stats.abnormal > 0) {
        console.log(`# harness: the host command did not start and exit cleanly at end of input: ${opts.spawnHost}`)
        removeDir()
        return false
      }
      return true
    },

    async finish () {
      const lines = []
      const problems = []
      // The suite leaves databases open: the sublevel run never closes the
      // parent of its sublevels, and a few tests do not close theirs.
      const leftOpen = await closeGuests(30000)
      if (!leftOpen.ok) problems.push(`closing the ${leftOpen.count} databases left open took over 30 s`)
      await pool.stopAll()
      const left = pool.leftovers()
      for (const p of left) {
        problems.push(`process left behind: pid ${p.pid} (state ${p.state}, parent ${p.ppid}): ${p.cmdline || '(no command line)'}`)
        try { process.kill(p.pid, 'SIGKILL') } catch (_) {}
      }
      const s = pool.stats
      lines.push(`# ${databases} databases made by factory(), each its own file under ${dir}` +
        `; ${opens} opens (${reopens} reopens of a closed database), ${leftOpen.count} databases left open by the suite, closed at the end`)
      lines.push(`# ${s.spawned} hosts spawned (${preflightHosts} preflight + 1 per open), at most ${s.peak} running at once: ` +
        `${s.clean} exited with status 0 at end of input, ${s.abnormal} did not` +
        (s.abnormal ? ` (${s.unexpected} before their guest closed, ${s.forced} needed a signal)` : '') +
        `; ${left.length} processes left behind; retry: ${!!opts.retry}; host command: ${opts.spawnHost}`)
      for (const why of pool.abnormal) problems.push(why)
      if (s.spawned !== opens + preflightHosts) problems.push(`${s.spawned} hosts spawned for ${opens} opens`)
      removeDir()
      return { lines, problems }
    },

    // Deadline, signal or uncaught exception: stop the hosts, bounded.
    async abort () {
      let timer
      await Promise.race([
        pool.stopAll(),
        new Promise((resolve) => { timer = setTimeout(resolve, 3000) })
      ])
      clearTimeout(timer)
      pool.killAllSync('SIGKILL')
      removeDir()
    }
  }
}

// ---- main ----------------------------------------------------------------------

async function main () {
  const started = Date.now()
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--spawn-host': 'string',
      '--tmpdir': 'string',
      '--keep-tmp': 'boolean',
      '--host-stderr': 'boolean',
      '--host-exit-timeout': 'number',
      '--retry': 'boolean',
      '--grep': 'string',
      '--no-skips': 'boolean',
      '--fail-on-skip': 'boolean',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); process.exit(0) }
    if (!opts.connect === !opts.spawnHost) throw new UsageError('give exactly one of --connect and --spawn-host')
    if (opts.connect) {
      opts.address = parseAddress(opts.connect)
      for (const o of ['tmpdir', 'keepTmp', 'hostStderr', 'hostExitTimeout']) {
        if (opts[o] !== undefined) throw new UsageError(`--${o.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} goes with --spawn-host`)
      }
    } else if (!opts.spawnHost.includes('@DB@')) {
      throw new UsageError('the --spawn-host command must contain @DB@ (each database gets a file of its own)')
    }
    if (opts.hostExitTimeout !== undefined && !(opts.hostExitTimeout > 0)) throw new UsageError('--host-exit-timeout must be positive')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`abstract-suite: ${err.message}\n${USAGE}`)
    process.exit(2)
  }

  const mode = opts.spawnHost ? spawnedHostMode(opts) : sharedHostMode(opts)
  const grep = opts.grep ? new RegExp(opts.grep) : null
  const retrySkips = opts.noSkips || !opts.retry ? new Map() : RETRY_SKIPS

  const counts = { pass: 0, fail: 0, skip: 0, todo: 0, tests: 0, skippedTests: 0 }
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1)
  let summarized = false
  const summarize = (aborted, result = { lines: [], problems: [] }) => {
    if (summarized) return
    summarized = true
    if (aborted) counts.fail++
    for (const line of result.lines) console.log(line)
    // Harness-level failures (a host that did not exit cleanly, a process
    // left behind) count as failures too, one "not ok" line each.
    for (const problem of result.problems) {
      console.log(`not ok - harness: ${problem}`)
      counts.fail++
    }
    console.log(`abstract-suite: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped ` +
      `(assertions; ${counts.tests} tests, ${counts.skippedTests} skipped) in ${elapsed()} s`)
  }
  let aborting = false
  const abortRun = async (why, status) => {
    if (aborting) return
    // What tape prints from here on (tests failing as their hosts go away)
    // is noise after the summary: drop it.
    aborting = true
    console.log(`not ok - ${why}`)
    summarize(true)
    await mode.abort()
    process.exit(status)
  }

  // Every run is bounded; on the deadline the hosts are stopped too.
  const timeoutSeconds = opts.timeout || 900
  setTimeout(() => {
    console.error(`abstract-suite: timed out after ${timeoutSeconds * 1000} ms`)
    abortRun(`timed out after ${timeoutSeconds} s, the run stops here`, 124)
  }, timeoutSeconds * 1000).unref()
  if (opts.spawnHost) {
    for (const [signal, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
      process.once(signal, () => abortRun(`${signal} received, the run stops here`, 128 + n))
    }
  }
  // An exception thrown inside a test ends the run: still summarize.
  process.on('uncaughtException', (err) => {
    if (aborting) return // a test failing as its host goes away
    console.log(String(err && err.stack ? err.stack : err).split('\n').map((l) => `  # ${l}`).join('\n'))
    abortRun('uncaught exception, the run stops here', 1)
  })

  if (!(await mode.preflight())) {
    console.log('not ok - harness: the preflight host failed, the suite does not run')
    summarize(true)
    process.exit(1)
  }

  // Wrap tape's test(): skip what cannot work here, and honour --grep.
  // A mode's teardown runs after every test (tape waits for it).
  function wrappedTest (name, ...rest) {
    const why = mode.skips.get(name)
    const retrySkip = retrySkips.get(name)
    const retryWhy = retrySkip && retrySkip.runs.includes(suiteRun()) ? retrySkip.why : undefined
    // (tape's test.skip() makes a test that never runs nor shows: use opts.skip.)
    if (why) return test(name, { skip: `[${mode.skipLabel}: ${why}]` }, rest[rest.length - 1])
    if (retryWhy) return test(name, { skip: `[--retry only, reference guest bug: ${retryWhy}]` }, rest[rest.length - 1])
    if (grep && !grep.test(name)) return test(name, { skip: '[--grep]' }, rest[rest.length - 1])
    const fn = rest.pop()
    if (typeof fn !== 'function' || !mode.teardown) return test(name, ...rest, fn)
    return test(name, ...rest, function (t) {
      t.teardown(mode.teardown)
      return fn.call(this, t)
    })
  }
  Object.assign(wrappedTest, test)

  const stream = test.createStream()
  let buffered = ''
  stream.on('data', (chunk) => {
    if (aborting) return
    process.stdout.write(chunk)
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop()
    for (const line of lines) {
      if (/^# SKIP /.test(line)) {
        counts.skip++ // a whole test
        counts.skippedTests++
        counts.tests++
      } else if (/^# /.test(line) && !/^# (tests|pass|fail|todo) +\d+$|^# ok$/.test(line)) {
        counts.tests++ // a test's name
      } else if (/^ok \d+/.test(line)) {
        if (/# SKIP/.test(line)) counts.skip++
        else counts.pass++
      } else if (/^not ok \d+/.test(line)) {
        if (/# TODO/.test(line)) counts.todo++
        else counts.fail++
      }
    }
  })
  // tape's default harness closes its output only when the process exits,
  // and open connections keep this one alive: close it when the tests are done.
  test.onFinish(() => test.getHarness().close())
  stream.on('end', async () => {
    let result
    try {
      result = await mode.finish()
    } catch (err) {
      result = { lines: [], problems: [`cleanup failed: ${err && err.stack ? err.stack : err}`] }
    }
    if (opts.failOnSkip && counts.skip > 0) {
      result.problems.push(`${counts.skip} skipped (--fail-on-skip: the whole suite must run)`)
    }
    summarize(false, result)
    // tape's own exit handler would close the harness a second time.
    process.removeAllListeners('exit')
    process.exit(counts.fail === 0 && counts.pass > 0 ? 0 : 1)
  })

  suite({ test: wrappedTest, factory: mode.factory })
}

main().catch((err) => {
  console.error('abstract-suite: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
