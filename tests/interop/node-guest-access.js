#!/usr/bin/env node
'use strict'

// A Node many-level guest (the reference, many-level 2.0.0), which cannot
// send a token, on a C++ host that authenticates (tests/cli/auth.sh):
//
//   node node-guest-access.js --connect ADDR --expect refused
//     every request fails with LEVEL_UNAUTHENTICATED and no data comes back
//   node node-guest-access.js --connect ADDR --expect read-only --key K --value V
//     K reads as V; put, del, batch and clear fail with LEVEL_READONLY and
//     K still reads as V
//
// Prints one line per check and exits 0 only if every check passed.

const assert = require('node:assert/strict')
const { ManyLevelGuest } = require('many-level')
const { parseArgs, attachGuest, deadline } = require('./lib/common')

async function rejectsWithCode (promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected error code ${code}, got ${err.code} (${err.message})`)
    return true
  })
}

async function main () {
  const args = parseArgs(process.argv.slice(2), {
    '--connect': 'string', '--expect': 'string', '--key': 'string', '--value': 'string'
  })
  if (!args.connect || !['refused', 'read-only'].includes(args.expect)) {
    throw new Error('usage: node-guest-access.js --connect ADDR --expect refused|read-only [--key K --value V]')
  }
  const timer = deadline(30000, 'node-guest-access')
  const db = new ManyLevelGuest()
  const socket = attachGuest(db, args.connect)
  const checks = []
  if (args.expect === 'refused') {
    const code = 'LEVEL_UNAUTHENTICATED'
    checks.push(['get', () => rejectsWithCode(db.get('a'), code)])
    checks.push(['getMany', () => rejectsWithCode(db.getMany(['a', 'b']), code)])
    checks.push(['iterator', () => rejectsWithCode(db.iterator().all(), code)])
    checks.push(['put', () => rejectsWithCode(db.put('a', 'x'), code)])
    checks.push(['clear', () => rejectsWithCode(db.clear(), code)])
  } else {
    const key = args.key
    const value = args.value
    const code = 'LEVEL_READONLY'
    checks.push(['get', async () => assert.equal(await db.get(key), value)])
    checks.push(['iterator', async () => assert.ok((await db.keys().all()).includes(key))])
    checks.push(['put', () => rejectsWithCode(db.put(key, 'changed'), code)])
    checks.push(['del', () => rejectsWithCode(db.del(key), code)])
    checks.push(['batch', () => rejectsWithCode(db.batch([{ type: 'put', key: 'n', value: 'v' }]), code)])
    checks.push(['clear', () => rejectsWithCode(db.clear(), code)])
    checks.push(['unchanged', async () => assert.equal(await db.get(key), value)])
  }
  let failed = 0
  for (const [name, fn] of checks) {
    try {
      await fn()
      console.log(`ok ${name}`)
    } catch (err) {
      failed++
      console.log(`not ok ${name}: ${err.message}`)
    }
  }
  await db.close()
  socket.destroy()
  clearTimeout(timer)
  console.log(`${checks.length - failed} passed, ${failed} failed`)
  process.exitCode = failed === 0 ? 0 : 1
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
