#!/usr/bin/env node
'use strict'

// abstract-level 1.x's whole compliance suite (require('abstract-level/test'))
// run with the reference guest (many-level 2.0.0) against a remote host.
//
//   node abstract-suite.js --connect tcp://127.0.0.1:PORT|unix:PATH
//                          [--retry] [--grep REGEX] [--no-skips] [--timeout SECONDS]
//
// --retry makes the guests retrying ones (supports.snapshots is then false,
// so the suite runs iterator-no-snapshot-test instead of the snapshot one).
// --grep runs only the tests whose name matches (others show as skipped;
// tests that depend on a skipped setUp test then fail). --no-skips runs the
// tests of SHARED_DB_SKIPS and RETRY_SKIPS too, to see them fail.
//
// many-level's own test/abstract.js gives each factory() call a host over a
// new memory-level, and a `_remote` function so that the suite can close and
// reopen a database (each open pipes a new host stream). Here there is one
// remote host with one database, and the suite wants a database of its own
// for every factory() call (a long-lived one made in a "setUp" test is used
// by later tests, while other tests make and close short-lived ones). So
// each factory() database is a *virtual* database:
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
// run: its database is cleared again and again.
//
// Output is tape's TAP, then a closing "abstract-suite: N passed, N failed,
// N skipped" line counting assertions. Exit status 0 only without failures.

const test = require('tape')
const suite = require('abstract-level/test')
const { ManyLevelGuest } = require('many-level')
const { pipeline } = require('readable-stream')
const { parseArgs, UsageError, parseAddress, connectSocket, deadline } = require('./lib/common')

const USAGE = 'usage: abstract-suite.js --connect ADDR [--retry] [--grep REGEX] [--no-skips] [--timeout SECONDS]'

// Tests that need two databases open at once with separate contents. With one
// shared remote database they cannot pass, whatever the host does:
const SHARED_DB_SKIPS = new Map([
  // db1.put('key') then expects db2.get('key') to fail: db2 is the same remote db.
  ['testCommon.factory() returns a unique database',
    'db1 and db2 share the one remote database']
])

// With --retry only: bugs of the reference guest itself, whatever the host.
const RETRY_SKIPS = new Map([
  // guest.js: `if (db[kRetry]) options.keys = true` in the Iterator constructor
  // (it needs keys as bookmarks) leaks into what iterator({ keys: false })
  // yields: the key instead of undefined. A sublevel strips it, so the
  // sublevel run passes.
  ['value-only iterator',
    'many-level 2.0.0 guest with retry yields keys from iterator({ keys: false })']
])

function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--retry': 'boolean',
      '--grep': 'string',
      '--no-skips': 'boolean',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); process.exit(0) }
    if (!opts.connect) throw new UsageError('--connect is required')
    opts.address = parseAddress(opts.connect)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`abstract-suite: ${err.message}\n${USAGE}`)
    process.exit(2)
  }
  deadline((opts.timeout || 900) * 1000, 'abstract-suite')

  const grep = opts.grep ? new RegExp(opts.grep) : null
  const sockets = new Set()
  let databases = 0

  function remote () {
    const socket = connectSocket(opts.address)
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    // An error reaches the guest through its pipeline; nothing more to do.
    socket.on('error', () => {})
    return socket
  }

  // The admin connection that swaps contents in and out of the remote db.
  const admin = new ManyLevelGuest({ keyEncoding: 'buffer', valueEncoding: 'buffer' })
  const adminSocket = connectSocket(opts.address)
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
    // The suite runs itself again on sublevels, with a factory of its own:
    // factory().sublevel('test', opts). Such a sublevel is what the tests
    // open and close; its parent guest stays open. Make that sublevel's
    // open and close swap the contents as its parent's would.
    const sublevel = db.sublevel
    db.sublevel = function (name, options) {
      const sub = sublevel.call(this, name, options)
      if (name === 'test' && /abstract-level[\\/]test[\\/]index\.js/.test(new Error().stack)) {
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

  // Wrap tape's test(): skip what cannot work here, and honour --grep.
  // Every test gets settle() as teardown (see above); tape waits for it.
  function wrappedTest (name, ...rest) {
    const why = opts.noSkips ? undefined : SHARED_DB_SKIPS.get(name)
    const retryWhy = opts.noSkips || !opts.retry ? undefined : RETRY_SKIPS.get(name)
    // (tape's test.skip() makes a test that never runs nor shows: use opts.skip.)
    if (why) return test(name, { skip: `[shared remote db: ${why}]` }, rest[rest.length - 1])
    if (retryWhy) return test(name, { skip: `[reference guest bug: ${retryWhy}]` }, rest[rest.length - 1])
    if (grep && !grep.test(name)) return test(name, { skip: '[--grep]' }, rest[rest.length - 1])
    const fn = rest.pop()
    if (typeof fn !== 'function') return test(name, ...rest, fn)
    return test(name, ...rest, function (t) {
      t.teardown(settle)
      return fn.call(this, t)
    })
  }
  Object.assign(wrappedTest, test)

  const counts = { pass: 0, fail: 0, skip: 0, todo: 0 }
  const stream = test.createStream()
  let buffered = ''
  stream.on('data', (chunk) => {
    process.stdout.write(chunk)
    buffered += chunk
    const lines = buffered.split('\n')
    buffered = lines.pop()
    for (const line of lines) {
      if (/^# SKIP /.test(line)) {
        counts.skip++ // a whole test
      } else if (/^ok \d+/.test(line)) {
        if (/# SKIP/.test(line)) counts.skip++
        else counts.pass++
      } else if (/^not ok \d+/.test(line)) {
        if (/# TODO/.test(line)) counts.todo++
        else counts.fail++
      }
    }
  })
  let summarized = false
  const summarize = (aborted) => {
    if (summarized) return
    summarized = true
    if (aborted) counts.fail++
    console.log(`# ${databases} databases made by factory(), ${swaps} content swaps, retry: ${!!opts.retry}, host: ${opts.connect}`)
    console.log(`abstract-suite: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped`)
  }
  // An exception thrown inside a test ends the run: still summarize.
  process.on('uncaughtException', (err) => {
    console.log('not ok - uncaught exception, the run stops here')
    console.log(String(err && err.stack ? err.stack : err).split('\n').map((l) => `  # ${l}`).join('\n'))
    summarize(true)
    process.exit(1)
  })
  // tape's default harness closes its output only when the process exits,
  // and open sockets keep this one alive: close it when the tests are done.
  test.onFinish(() => test.getHarness().close())
  stream.on('end', () => {
    for (const socket of sockets) socket.destroy()
    adminSocket.destroy()
    summarize(false)
    // tape's own exit handler would close the harness a second time.
    process.removeAllListeners('exit')
    process.exit(counts.fail === 0 && counts.pass > 0 ? 0 : 1)
  })

  suite({ test: wrappedTest, factory })
}

main()
