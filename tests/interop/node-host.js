#!/usr/bin/env node
'use strict'

// A Node many-level host: the reference implementation (many-level 2.0.0)
// over memory-level or classic-level, serving every connection.
//
//   node node-host.js --listen tcp://127.0.0.1:PORT|unix:PATH
//                     [--backend memory|classic] [--path DIR]
//                     [--seed N] [--readonly] [--exit-on-stdin-eof]
//   node node-host.js --stdio [...]     one guest over stdin/stdout
//
// With --listen it prints "listening <address>" on stdout once it accepts
// connections (port 0 picks a free port and prints the real one). It exits
// with status 0 on SIGTERM or SIGINT, after closing its connections and its
// database. With --stdio it serves one guest on stdin/stdout and exits when
// stdin ends; its messages then go to stderr. --exit-on-stdin-eof makes a
// --listen host exit too when its stdin ends (so that it cannot outlive the
// script that started it). --seed N writes the entries of lib/common.js's
// seed format (seed:00000000 .. N-1) before listening.

const fs = require('fs')
const net = require('net')
const { pipeline } = require('readable-stream')
const { ManyLevelHost } = require('many-level')
const { parseArgs, UsageError, parseAddress, formatAddress, writeSeed } = require('./lib/common')

const USAGE = 'usage: node-host.js (--listen tcp://127.0.0.1:PORT|unix:PATH | --stdio) ' +
  '[--backend memory|classic] [--path DIR] [--seed N] [--readonly] [--exit-on-stdin-eof]'

function log (...args) {
  console.error('node-host:', ...args)
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--listen': 'string',
      '--stdio': 'boolean',
      '--backend': 'string',
      '--path': 'string',
      '--seed': 'number',
      '--readonly': 'boolean',
      '--exit-on-stdin-eof': 'boolean',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.listen === !opts.stdio) throw new UsageError('give exactly one of --listen and --stdio')
    opts.backend = opts.backend || 'memory'
    if (opts.backend !== 'memory' && opts.backend !== 'classic') throw new UsageError(`unknown backend ${opts.backend}`)
    if (opts.backend === 'classic' && !opts.path) throw new UsageError('--backend classic needs --path DIR')
    if (opts.listen) opts.address = parseAddress(opts.listen)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`node-host: ${err.message}\n${USAGE}`)
    return 2
  }

  let db
  if (opts.backend === 'classic') {
    const { ClassicLevel } = require('classic-level')
    db = new ClassicLevel(opts.path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  } else {
    const { MemoryLevel } = require('memory-level')
    db = new MemoryLevel({ keyEncoding: 'buffer', valueEncoding: 'buffer' })
  }
  await db.open()
  if (opts.seed) {
    await writeSeed(db, opts.seed)
    log(`seeded ${opts.seed} entries`)
  }

  const host = new ManyLevelHost(db, { readonly: !!opts.readonly })
  const sockets = new Set()
  let server = null
  let stopping = false

  const stop = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    if (server) server.close()
    for (const socket of sockets) socket.destroy()
    try {
      await db.close()
    } catch (err) {
      log(`closing the database failed: ${err.message}`)
    }
    if (opts.address && opts.address.kind === 'unix') {
      try { fs.unlinkSync(opts.address.path) } catch (_) {}
    }
    process.exit(0)
  }

  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => stop('SIGHUP'))

  if (opts.exitOnStdinEof && !opts.stdio) {
    // Dies with whoever holds our stdin open (run-with-host.sh does).
    process.stdin.on('end', () => stop('stdin ended'))
    process.stdin.on('error', () => stop('stdin failed'))
    process.stdin.resume()
  }

  if (opts.stdio) {
    process.stdin.on('end', () => stop('stdin ended'))
    pipeline(process.stdin, host.createRpcStream(), process.stdout, (err) => {
      stop(err ? `stream error: ${err.message}` : 'stream closed')
    })
    log(`serving stdio (${opts.backend})`)
    return null
  }

  server = net.createServer((socket) => {
    sockets.add(socket)
    socket.setNoDelay(true)
    pipeline(socket, host.createRpcStream(), socket, () => {
      // Disconnected (a guest going away is not an error for a host).
      sockets.delete(socket)
    })
  })

  const a = opts.address
  if (a.kind === 'unix') {
    // A stale socket file from a killed run would make listen fail.
    try { if (fs.statSync(a.path).isSocket()) fs.unlinkSync(a.path) } catch (_) {}
  }
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    if (a.kind === 'unix') server.listen(a.path, resolve)
    else server.listen(a.port, a.host, resolve)
  })
  server.on('error', (err) => log(`server error: ${err.message}`))

  const bound = a.kind === 'unix' ? a : { kind: 'tcp', host: a.host, port: server.address().port }
  process.stdout.write(`listening ${formatAddress(bound)}\n`)
  log(`listening ${formatAddress(bound)} (${opts.backend}${opts.readonly ? ', readonly' : ''})`)
  return null
}

main().then((code) => {
  if (code !== null) process.exitCode = code
}, (err) => {
  console.error('node-host: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
