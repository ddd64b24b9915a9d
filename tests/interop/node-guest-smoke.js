#!/usr/bin/env node
'use strict'

// A Node many-level guest (the reference, many-level 2.0.0) running a fixed
// scenario against a host and asserting every result with node:assert.
//
//   node node-guest-smoke.js --connect tcp://127.0.0.1:PORT|unix:PATH
//   node node-guest-smoke.js --stdio-cmd "<host command line>"
//
// --stdio-cmd spawns the command (through /bin/sh) and talks to it over its
// stdin/stdout; the host's stderr passes through. The scenario starts with
// clearing the whole database, so point it at a host whose data may go.
// It prints one TAP-like line per check and a closing "N passed, N failed"
// line; the exit status is 0 only if every check passed.

const assert = require('node:assert/strict')
const { ManyLevelGuest } = require('many-level')
const { parseArgs, UsageError, attachGuest, attachGuestToCommand, deadline } = require('./lib/common')

const USAGE = 'usage: node-guest-smoke.js (--connect ADDR | --stdio-cmd "COMMAND") [--timeout SECONDS]'

const checks = []
function check (name, fn) {
  checks.push({ name, fn })
}

async function rejectsWithCode (promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected error code ${code}, got ${err.code} (${err.message})`)
    return true
  })
}

// What an abstract-level iterator over sorted `keys` yields for options.
function expectRange (keys, { gt, gte, lt, lte, reverse, limit }) {
  let out = keys.filter((k) => {
    if (gt !== undefined && !(k > gt)) return false
    if (gte !== undefined && !(k >= gte)) return false
    if (lt !== undefined && !(k < lt)) return false
    if (lte !== undefined && !(k <= lte)) return false
    return true
  })
  if (reverse) out = out.reverse()
  if (limit !== undefined && limit >= 0) out = out.slice(0, limit)
  return out
}

function shuffled (array) {
  // Deterministic shuffle (a fixed LCG) so that a failure is reproducible.
  const a = array.slice()
  let seed = 12345
  for (let i = a.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const j = seed % (i + 1)
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

function defineScenario (db, db2) {
  // A raw view: keys and values as bytes, what actually sits in the host.
  const raw = { keyEncoding: 'buffer', valueEncoding: 'buffer' }

  check('clear() empties the whole database', async () => {
    await db.clear()
    assert.deepEqual(await db.keys().all(), [])
  })

  check('put() then get() with utf8', async () => {
    await db.put('hello', 'world')
    assert.equal(await db.get('hello'), 'world')
    await db.put('hello', 'again')
    assert.equal(await db.get('hello'), 'again', 'overwrite')
  })

  check('utf8 outside ASCII travels as UTF-8 bytes', async () => {
    const key = 'ключ-🔑'
    const value = 'värde ✓ 値'
    await db.put(key, value)
    assert.equal(await db.get(key), value)
    const rawValue = await db.get(Buffer.from(key, 'utf8'), raw)
    assert.deepEqual(rawValue, Buffer.from(value, 'utf8'))
    await db.del(key)
  })

  check('get() of a missing key fails with LEVEL_NOT_FOUND', async () => {
    await rejectsWithCode(db.get('no such key'), 'LEVEL_NOT_FOUND')
  })

  check('del() removes a key; del() of a missing key succeeds', async () => {
    await db.put('to-delete', 'x')
    await db.del('to-delete')
    await rejectsWithCode(db.get('to-delete'), 'LEVEL_NOT_FOUND')
    await db.del('never-existed')
  })

  check('empty value and empty key', async () => {
    await db.put('empty-value', '')
    assert.equal(await db.get('empty-value'), '', 'empty value is not "not found"')
    assert.deepEqual(await db.get('empty-value', raw), Buffer.alloc(0))
    assert.deepEqual(await db.getMany(['empty-value', 'missing']), ['', undefined])
    await db.put('', 'value of the empty key')
    assert.equal(await db.get(''), 'value of the empty key')
    const first = await db.iterator({ limit: 1 }).all()
    assert.deepEqual(first, [['', 'value of the empty key']], 'the empty key sorts first')
    await db.del('')
    await db.del('empty-value')
    await rejectsWithCode(db.get(''), 'LEVEL_NOT_FOUND')
  })

  check('batch() with an array of put and del', async () => {
    await db.batch([
      { type: 'put', key: 'b1', value: '1' },
      { type: 'put', key: 'b2', value: '2' },
      { type: 'put', key: 'b3', value: '3' },
      { type: 'del', key: 'b2' },
      { type: 'del', key: 'b-missing' }
    ])
    assert.deepEqual(await db.getMany(['b1', 'b2', 'b3']), ['1', undefined, '3'])
    await db.batch([])
  })

  check('chained batch', async () => {
    await db.batch().put('c1', 'one').put('c2', 'two').del('c1').put('c3', 'three').write()
    assert.deepEqual(await db.getMany(['c1', 'c2', 'c3']), [undefined, 'two', 'three'])
    await db.batch().del('c2').del('c3').write()
    assert.deepEqual(await db.getMany(['c2', 'c3']), [undefined, undefined])
  })

  check('getMany() keeps order, reports missing keys, accepts []', async () => {
    await db.batch([
      { type: 'put', key: 'gm:a', value: 'A' },
      { type: 'put', key: 'gm:b', value: 'B' }
    ])
    assert.deepEqual(await db.getMany(['gm:b', 'gm:x', 'gm:a', 'gm:b']), ['B', undefined, 'A', 'B'])
    assert.deepEqual(await db.getMany([]), [])
    await db.batch([{ type: 'del', key: 'gm:a' }, { type: 'del', key: 'gm:b' }])
  })

  check('200 concurrent puts and gets (answers in any order)', async () => {
    const n = 200
    const keys = Array.from({ length: n }, (_, i) => `conc:${String(i).padStart(3, '0')}`)
    await Promise.all(keys.map((k, i) => db.put(k, `v${i}`)))
    const values = await Promise.all(keys.map((k) => db.get(k)))
    assert.deepEqual(values, keys.map((_, i) => `v${i}`))
    assert.equal((await db.keys({ gte: 'conc:', lt: 'conc;' }).all()).length, n)
    await db.clear({ gte: 'conc:', lt: 'conc;' })
  })

  const rangeKeys = Array.from({ length: 20 }, (_, i) => `r:${String(i).padStart(2, '0')}`)
  const rangeValue = (k) => `value of ${k}`

  check('iterator() yields sorted entries; keys() and values()', async () => {
    await db.batch(shuffled(rangeKeys).map((k) => ({ type: 'put', key: k, value: rangeValue(k) })))
    const range = { gte: 'r:', lt: 'r;' }
    assert.deepEqual(await db.iterator(range).all(), rangeKeys.map((k) => [k, rangeValue(k)]))
    assert.deepEqual(await db.keys(range).all(), rangeKeys)
    assert.deepEqual(await db.values(range).all(), rangeKeys.map(rangeValue))
    assert.deepEqual(await db.iterator({ ...range, keys: false }).all(), rangeKeys.map((k) => [undefined, rangeValue(k)]))
    assert.deepEqual(await db.iterator({ ...range, values: false }).all(), rangeKeys.map((k) => [k, undefined]))
  })

  check('iterator ranges: gt/gte/lt/lte, reverse, limit', async () => {
    const cases = [
      { gte: 'r:05', lt: 'r:10' },
      { gt: 'r:05', lte: 'r:10' },
      { gt: 'r:05', lt: 'r:06' },
      { gte: 'r:05', lte: 'r:05' },
      { gte: 'r:055', lt: 'r:09' }, // bounds that are not keys
      { gte: 'r:', lt: 'r;', reverse: true },
      { gt: 'r:03', lte: 'r:15', reverse: true },
      { gte: 'r:', lt: 'r;', limit: 5 },
      { gte: 'r:', lt: 'r;', limit: 5, reverse: true },
      { gte: 'r:', lt: 'r;', limit: 0 },
      { gte: 'r:', lt: 'r;', limit: -1 },
      { gte: 'r:', lt: 'r;', limit: 100 },
      { gt: 'r:10', lt: 'r:05' }, // empty: lower bound above upper bound
      { gte: 'r:19' , lt: 'r;' },
      { gt: 'r:19', lt: 'r;' }
    ]
    for (const options of cases) {
      const got = await db.keys(options).all()
      assert.deepEqual(got, expectRange(rangeKeys, options), JSON.stringify(options))
      const entries = await db.iterator(options).all()
      assert.deepEqual(entries, expectRange(rangeKeys, options).map((k) => [k, rangeValue(k)]), JSON.stringify(options))
    }
  })

  check('iterator next() one at a time and nextv()', async () => {
    const it = db.iterator({ gte: 'r:', lt: 'r;' })
    assert.deepEqual(await it.next(), ['r:00', rangeValue('r:00')])
    assert.deepEqual(await it.next(), ['r:01', rangeValue('r:01')])
    const batch = await it.nextv(5)
    assert.deepEqual(batch.map((e) => e[0]), rangeKeys.slice(2, 7))
    const rest = await it.all()
    assert.deepEqual(rest.map((e) => e[0]), rangeKeys.slice(7))
    const it2 = db.keys({ gte: 'r:', lt: 'r;' })
    let n = 0
    while ((await it2.next()) !== undefined) n++
    assert.equal(n, rangeKeys.length)
    await it2.close()
  })

  check('seek() forward, reverse, out of range, on keys() and values()', async () => {
    const it = db.iterator({ gte: 'r:', lt: 'r;' })
    assert.deepEqual(await it.next(), ['r:00', rangeValue('r:00')])
    it.seek('r:10')
    assert.deepEqual(await it.next(), ['r:10', rangeValue('r:10')])
    it.seek('r:035') // between keys: lands on the next one
    assert.deepEqual(await it.next(), ['r:04', rangeValue('r:04')])
    it.seek('r:02') // backwards is allowed
    assert.deepEqual((await it.nextv(3)).map((e) => e[0]), ['r:02', 'r:03', 'r:04'])
    it.seek('zzz') // beyond the range
    assert.equal(await it.next(), undefined)
    it.seek('r:18')
    assert.deepEqual((await it.all()).map((e) => e[0]), ['r:18', 'r:19'])

    const rev = db.keys({ gte: 'r:', lt: 'r;', reverse: true })
    assert.equal(await rev.next(), 'r:19')
    rev.seek('r:055') // reverse: lands on the largest key <= target
    assert.deepEqual(await rev.nextv(3), ['r:05', 'r:04', 'r:03'])
    rev.seek('r:')
    assert.equal(await rev.next(), undefined)
    await rev.close()

    const values = db.values({ gte: 'r:', lt: 'r;' })
    values.seek('r:17')
    assert.deepEqual(await values.all(), ['r:17', 'r:18', 'r:19'].map(rangeValue))

    const buffered = db.keys({ gte: 'r:', lt: 'r;', keyEncoding: 'buffer' })
    buffered.seek(Buffer.from('r:16'))
    assert.deepEqual(await buffered.next(), Buffer.from('r:16'))
    await buffered.close()
  })

  check('iterator sees a snapshot taken when it was created', async () => {
    const it = db.keys({ gte: 'r:', lt: 'r;' })
    assert.equal(await it.next(), 'r:00')
    await db.put('r:105', 'late') // sorts between r:10 and r:11
    await db.del('r:15')
    const rest = await it.all()
    assert.deepEqual(rest, rangeKeys.slice(1), 'the iterator ignores writes made after it was created')
    assert.ok((await db.keys({ gte: 'r:', lt: 'r;' }).all()).includes('r:105'))
    await db.put('r:15', rangeValue('r:15'))
    await db.del('r:105')
  })

  check('5000 entries across many data frames (flow control, limit, reverse, early close)', async () => {
    const n = 5000
    const key = (i) => `big:${String(i).padStart(5, '0')}`
    const value = (i) => `${i}:`.padEnd(200, 'x')
    for (let start = 0; start < n; start += 1000) {
      const ops = []
      for (let i = start; i < start + 1000; i++) ops.push({ type: 'put', key: key(i), value: value(i) })
      await db.batch(ops)
    }
    const range = { gte: 'big:', lt: 'big;' }
    const all = await db.iterator(range).all()
    assert.equal(all.length, n)
    for (let i = 0; i < n; i++) {
      if (all[i][0] !== key(i) || all[i][1] !== value(i)) assert.fail(`entry ${i} is ${all[i][0]}`)
    }
    const limited = await db.keys({ ...range, limit: 3001 }).all()
    assert.equal(limited.length, 3001)
    assert.equal(limited[3000], key(3000))
    const reversed = await db.keys({ ...range, reverse: true }).all()
    assert.equal(reversed.length, n)
    assert.equal(reversed[0], key(n - 1))
    assert.equal(reversed[n - 1], key(0))

    let seen = 0
    for await (const [k] of db.iterator(range)) {
      assert.equal(k, key(seen))
      if (++seen === 10) break // closes the iterator early
    }
    // One at a time, so that every single data frame is acknowledged.
    const it = db.values(range)
    let count = 0
    while ((await it.next()) !== undefined) count++
    await it.close()
    assert.equal(count, n)
    await db.clear(range)
    assert.deepEqual(await db.keys(range).all(), [])
  })

  check('binary keys sort bytewise (memcmp, then length); binary values', async () => {
    const p = Buffer.from('bin/')
    const suffixes = [[], [0x00], [0x00, 0x00], [0x00, 0x01], [0x01], [0x7f], [0x80], [0xc3, 0xa9], [0xfe], [0xff], [0xff, 0x00], [0xff, 0xff]]
    const keys = suffixes.map((s) => Buffer.concat([p, Buffer.from(s)]))
    const value = (i) => Buffer.from([0xff, 0xfe, 0x00, i, 0x80])
    await db.batch(shuffled(keys.map((k, i) => ({ type: 'put', key: k, value: value(i) }))), raw)
    const range = { gte: p, lt: Buffer.from('bin0'), ...raw }
    const got = await db.iterator(range).all()
    assert.deepEqual(got.map((e) => e[0]), keys)
    assert.deepEqual(got.map((e) => e[1]), keys.map((_, i) => value(i)))
    assert.deepEqual(await db.get(keys[3], raw), value(3))
    const view = await db.get(keys[3], { keyEncoding: 'view', valueEncoding: 'view' })
    assert.ok(view instanceof Uint8Array)
    assert.deepEqual(Buffer.from(view), value(3))
    const upper = await db.keys({ gt: Buffer.concat([p, Buffer.from([0xff])]), lt: Buffer.from('bin0'), keyEncoding: 'buffer' }).all()
    assert.deepEqual(upper, keys.slice(-2))
    const rev = await db.keys({ gte: p, lte: Buffer.concat([p, Buffer.from([0x01])]), reverse: true, keyEncoding: 'buffer' }).all()
    assert.deepEqual(rev, keys.slice(0, 5).reverse())
    await db.clear(range)
  })

  check('hex and base64 encodings', async () => {
    await db.put('ff00', 'cafe', { keyEncoding: 'hex', valueEncoding: 'hex' })
    assert.deepEqual(await db.get(Buffer.from([0xff, 0x00]), raw), Buffer.from([0xca, 0xfe]))
    assert.equal(await db.get('ff00', { keyEncoding: 'hex', valueEncoding: 'hex' }), 'cafe')
    assert.equal(await db.get('/wA=', { keyEncoding: 'base64', valueEncoding: 'base64' }), 'yv4=')
    const keys = await db.keys({ gte: 'ff', lt: 'ff01', keyEncoding: 'hex' }).all()
    assert.deepEqual(keys, ['ff00'])
    await db.del('ff00', { keyEncoding: 'hex' })
  })

  check('json encoding', async () => {
    const value = { a: 1, b: [true, null, 'x'], c: { d: 'é' } }
    await db.put('json:1', value, { valueEncoding: 'json' })
    assert.deepEqual(await db.get('json:1', { valueEncoding: 'json' }), value)
    assert.equal(await db.get('json:1'), JSON.stringify(value), 'stored as JSON text')
    await db.put([1, 'a'], 'json key', { keyEncoding: 'json' })
    assert.equal(await db.get('[1,"a"]'), 'json key')
    const jsonDb = db.sublevel('jsonsub', { valueEncoding: 'json' })
    await jsonDb.put('k', { n: 42 })
    assert.deepEqual(await jsonDb.get('k'), { n: 42 })
    assert.deepEqual(await jsonDb.values().all(), [{ n: 42 }])
    await db.del('json:1')
    await db.del([1, 'a'], { keyEncoding: 'json' })
    await jsonDb.clear()
  })

  check('sublevels are "!name!" key prefixes, isolated from each other', async () => {
    const sub = db.sublevel('sub')
    const nested = sub.sublevel('nested')
    const other = db.sublevel('other')
    await sub.put('a', '1')
    await sub.put('b', '2')
    await nested.put('a', 'n1')
    await other.put('a', 'o1')
    await db.put('sub-sibling', 'root')
    assert.equal(await db.get('!sub!a'), '1', 'raw key of sub')
    assert.equal(await db.get('!sub!!nested!a'), 'n1', 'raw key of nested')
    // In abstract-level 1 a nested sublevel lies inside its parent's range.
    assert.deepEqual(await sub.keys().all(), ['!nested!a', 'a', 'b'], 'sub sees only its own range')
    assert.deepEqual(await sub.iterator({ gt: 'a' }).all(), [['b', '2']])
    assert.deepEqual(await nested.iterator().all(), [['a', 'n1']])
    assert.deepEqual(await other.iterator().all(), [['a', 'o1']])
    assert.deepEqual(await sub.getMany(['a', 'b', 'c']), ['1', '2', undefined])
    await sub.batch([{ type: 'put', key: 'c', value: '3' }, { type: 'del', key: 'a' }])
    assert.deepEqual(await sub.keys({ gte: 'a' }).all(), ['b', 'c'])
    const it = sub.keys()
    it.seek('c')
    assert.deepEqual(await it.all(), ['c'])
    await nested.clear()
    assert.deepEqual(await sub.keys().all(), ['b', 'c'], 'clearing nested leaves its parent alone')
    await sub.clear()
    assert.deepEqual(await sub.keys().all(), [])
    assert.equal(await other.get('a'), 'o1', 'clearing a sublevel leaves others alone')
    assert.equal(await db.get('sub-sibling'), 'root')
    await other.clear()
    await db.del('sub-sibling')
    assert.deepEqual(await db.keys({ gte: '!', lt: '"' }).all(), [])
  })

  check('clear() with ranges, limit and reverse', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `c:${String(i).padStart(2, '0')}`)
    const range = { gte: 'c:', lt: 'c;' }
    await db.batch(keys.map((k) => ({ type: 'put', key: k, value: 'v' })))
    await db.clear({ gte: 'c:05', lt: 'c:10' })
    let left = keys.filter((k) => !(k >= 'c:05' && k < 'c:10'))
    assert.deepEqual(await db.keys(range).all(), left)
    await db.clear({ ...range, limit: 3 })
    left = left.slice(3)
    assert.deepEqual(await db.keys(range).all(), left)
    await db.clear({ ...range, limit: 2, reverse: true })
    left = left.slice(0, -2)
    assert.deepEqual(await db.keys(range).all(), left)
    await db.clear({ gt: 'c:15', lte: 'c:17' })
    left = left.filter((k) => !(k > 'c:15' && k <= 'c:17'))
    assert.deepEqual(await db.keys(range).all(), left)
    // abstract-level 1 sends limit 0 as is (only a negative limit means none),
    // so clear({ limit: 0 }) clears nothing.
    await db.clear({ ...range, limit: 0 })
    const afterZero = await db.keys(range).all()
    await db.clear(range)
    assert.deepEqual(await db.keys(range).all(), [])
    assert.deepEqual(afterZero, left, 'clear({ limit: 0 }) clears nothing')
  })

  check('a 1 MiB value and a 10 KiB key', async () => {
    const big = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff
    const key = Buffer.alloc(10 * 1024, 0x6b)
    await db.put(key, big, raw)
    const got = await db.get(key, raw)
    assert.equal(got.length, big.length)
    assert.ok(got.equals(big))
    const [[k, v]] = await db.iterator({ gte: key, lte: key, ...raw }).all()
    assert.ok(k.equals(key) && v.equals(big))
    await db.del(key, raw)
  })

  if (db2) {
    check('a second connection sees the same database', async () => {
      await db.put('shared', 'from guest 1')
      assert.equal(await db2.get('shared'), 'from guest 1')
      await db2.batch([{ type: 'put', key: 'shared2', value: 'from guest 2' }])
      assert.deepEqual(await db.getMany(['shared', 'shared2']), ['from guest 1', 'from guest 2'])
      assert.deepEqual(await db2.keys({ gte: 'shared', lt: 'sharee' }).all(), ['shared', 'shared2'])
      await db2.clear({ gte: 'shared', lt: 'sharee' })
      await rejectsWithCode(db.get('shared'), 'LEVEL_NOT_FOUND')
    })
  }

  check('clear() without options removes everything that is left', async () => {
    assert.ok((await db.keys().all()).length > 0, 'earlier checks left keys behind')
    await db.clear()
    assert.deepEqual(await db.keys().all(), [])
    if (db2) assert.deepEqual(await db2.keys().all(), [], 'as the other connection sees it')
  })

  check('after close(), operations fail with LEVEL_DATABASE_NOT_OPEN', async () => {
    await db.close()
    assert.equal(db.status, 'closed')
    await rejectsWithCode(db.get('hello'), 'LEVEL_DATABASE_NOT_OPEN')
  })
}

async function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2), {
      '--connect': 'string',
      '--stdio-cmd': 'string',
      '--timeout': 'number',
      '--help': 'boolean'
    })
    if (opts.help) { console.log(USAGE); return 0 }
    if (!opts.connect === !opts.stdioCmd) throw new UsageError('give exactly one of --connect and --stdio-cmd')
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`node-guest-smoke: ${err.message}\n${USAGE}`)
    return 2
  }
  deadline((opts.timeout || 120) * 1000, 'node-guest-smoke')

  const db = new ManyLevelGuest()
  let db2 = null
  let child = null
  const sockets = []
  let lost = false
  const onclose = () => {
    if (db.status !== 'closing' && db.status !== 'closed') lost = true
  }
  if (opts.connect) {
    sockets.push(attachGuest(db, opts.connect, onclose))
    db2 = new ManyLevelGuest()
    sockets.push(attachGuest(db2, opts.connect))
    console.log(`# connected to ${opts.connect}`)
  } else {
    child = attachGuestToCommand(db, opts.stdioCmd, onclose)
    console.log(`# talking to \`${opts.stdioCmd}\` over its stdin/stdout`)
  }

  defineScenario(db, db2)

  let passed = 0
  let failed = 0
  for (let i = 0; i < checks.length; i++) {
    const { name, fn } = checks[i]
    try {
      await fn()
      passed++
      console.log(`ok ${i + 1} - ${name}`)
    } catch (err) {
      failed++
      console.log(`not ok ${i + 1} - ${name}`)
      const text = (err && err.stack) || String(err)
      console.log(text.split('\n').map((l) => `  # ${l}`).join('\n'))
      if (lost) {
        console.log('  # the connection to the host was lost')
      }
    }
  }
  console.log(`1..${checks.length}`)

  if (db2) await db2.close().catch(() => {})
  if (db.status === 'open') await db.close().catch(() => {})
  for (const s of sockets) s.destroy()
  if (child) await child.stop()

  console.log(`node-guest-smoke: ${passed} passed, ${failed} failed`)
  return failed === 0 ? 0 : 1
}

main().then((code) => {
  process.exit(code)
}, (err) => {
  console.error('node-guest-smoke: fatal:', err && err.stack ? err.stack : err)
  process.exit(1)
})
