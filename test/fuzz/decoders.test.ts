/**
 * Fuzzing the wire decoders: decodeMessage with every exported schema, valid samples mutated and hostile CBOR.
 *
 * Fuzzing (fast-check, one fixed seed, bounded runs): every wire decoder and
 * the HTTP surface fed random and mutated input. The properties: no crash, no
 * hang, no unbounded memory, and a clean, named error each time; the HTTP API
 * never answers 500 for client input, every error answer is `{ code, message }`
 * with the status its code maps to, the node stays up and its data dir gains
 * no stray files.
 *
 * Every bug these properties found is fixed; its shrunk counterexample stays
 * pinned in `examples` (and described in a comment marked REGRESSION), so the
 * bug cannot come back unnoticed.
 */
import fc from 'fast-check'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { MAX_CONTROL_FRAME_BYTES } from '../../src/constants.ts'
import { decodeMessage, encodeMessage } from '../../src/wire/codec.ts'
import * as messages from '../../src/wire/messages.ts'
import * as names from '../../src/wire/names.ts'
import { ErrorFrameSchema } from '../../src/wire/answer.ts'
import { decodeChannelAnswer, decodeChannelRequest, encodeChannelAnswer, encodeChannelRequest } from '../../src/wire/channel-frames.ts'
import { ByteWriter } from '../../src/wire/put-fields.ts'
import { CHANNEL_V3 } from '../../src/wire/channel-frames.ts'
import { CHANNEL_V2 } from '../../src/wire/channel-frames-v2.ts'
import { decoderInputArb, runs, errName, PEER, FILE_ID, SOME_BYTES, HEARTBEAT } from '../helpers/fuzz.ts'

const LOG_ADD = { id: FILE_ID, kind: 'add', seq: 1, manifest: SOME_BYTES, createdAt: 1, ts: 1, origin: PEER }
const LOG_DELETE = { id: FILE_ID, kind: 'delete', seq: 2, ts: 3, origin: PEER }
const DELETE_OP = { kind: 'delete', id: FILE_ID, group: 'g1', ts: 5, origin: PEER }
const PREPARE = { manifest: SOME_BYTES, createdAt: 1, ts: 2, origin: PEER, copies: 2, members: [PEER] }
const CHANNEL_PUT = { u: 0, group: 'g1', chunkSize: 1_048_576, chunk: SOME_BYTES, prepare: PREPARE }
const OBJECT = { file: FILE_ID, size: 10, etag: '"abc"', mime: 'video/mp4', meta: { title: 'x' }, modified: 1 }
const NAME_OP = { bucket: 'media', key: 'clips/a.mp4', live: true, value: SOME_BYTES, ts: 4, origin: PEER }
const NAME_ROW = { ...NAME_OP, seq: 4 }
const SUMMARY = { id: FILE_ID, size: 10, name: 'a.mp4', mime: 'video/mp4', createdAt: 1, chunks: 1, seq: 1 }

/** Valid messages per exported schema (a schema without one is fuzzed with generic input only). */
const SAMPLES: Record<string, unknown[]> = {
  bytesSchema: [SOME_BYTES, new Uint8Array(0)],
  groupName: ['g1', 'A.b_c-9'],
  SyncStatusSchema: [HEARTBEAT.sync],
  HeartbeatSchema: [HEARTBEAT, { ...HEARTBEAT, group: null, spare: true, addrs: [] }],
  MembersRequestSchema: [{}],
  SealedHeartbeatSchema: [{ boxes: [SOME_BYTES] }],
  SignedHeartbeatSchema: [{ body: SOME_BYTES, sig: new Uint8Array(64) }],
  MembersResponseSchema: [{ members: [{ sealed: SOME_BYTES, ageMs: 10 }] }, { members: [] }],
  LeaveNoticeSchema: [{ sealed: SOME_BYTES }],
  LeaveAckSchema: [{ ok: true }],
  AuthHelloSchema: [{ nonce: new Uint8Array(32) }],
  AuthChallengeSchema: [{ nonce: new Uint8Array(32), proofs: [new Uint8Array(32), new Uint8Array(32)] }],
  AuthProofSchema: [{ proofs: [new Uint8Array(32)] }],
  AuthResultSchema: [{ accepted: false }],
  QuorumSchema: ['all', 2],
  PutHeaderSchema: [{ group: 'g1', name: 'a.mp4', quorum: 'all' }, { group: 'g1', name: 'b', mime: 'video/mp4', size: 100, quorum: 2 }],
  UploadResultSchema: [{ id: FILE_ID, size: 10, name: 'a', mime: 'video/mp4', group: 'g1', createdAt: 1, replicas: [PEER] }, { id: FILE_ID, size: 10, name: 'a', mime: 'video/mp4', group: 'g1', createdAt: 1, replicas: [PEER], named: true }],
  ReplicateHeaderSchema: [{ group: 'g1', chunkSize: 1_048_576 }],
  PrepareFrameSchema: [{ manifest: SOME_BYTES, createdAt: 1, ts: 2, origin: PEER, copies: 2, members: [PEER] }, { manifest: SOME_BYTES, createdAt: 1, ts: 2, origin: PEER, copies: 2, members: [PEER], name: SOME_BYTES }],
  PreparedSchema: [{ prepared: true }],
  ChannelPutSchema: [CHANNEL_PUT],
  ChannelDecideSchema: [{ u: 1, commit: true }, { u: 2, commit: true, ack: true }],
  ChannelDecidedSchema: [{ applied: true }, { applied: false, holds: { ts: 9, origin: PEER } }],
  ChannelPutMetaSchema: [{ u: 0, group: 'g1', chunkSize: 1_048_576, prepare: PREPARE }],
  ChannelControlSchema: [{ decide: { u: 0, commit: false } }, { name: { u: 2, req: SOME_BYTES } }],
  ChannelNameSchema: [{ u: 2, req: SOME_BYTES }],
  ChannelAnswerSchema: [{ u: 3, prepared: true }, { u: 5, named: SOME_BYTES }, { u: 6, decided: { applied: false, holds: { ts: 9, origin: PEER } } }, { u: 4, error: { code: 'ERR_X', message: 'no' } }, { error: { code: 'ERR_PEER_UNAUTHORIZED', message: 'no' } }],
  OutcomeRequestSchema: [{ id: FILE_ID, ts: 1, origin: PEER }],
  OutcomeResponseSchema: [{ state: 'committed' }, { state: 'unknown' }],
  SummaryRequestSchema: [{ group: 'g1' }],
  SummaryResponseSchema: [{ group: 'g1', head: 3, count: 2, hashes: 7, bits: SOME_BYTES }],
  LocateRequestSchema: [{ id: FILE_ID }],
  LocateResponseSchema: [{ state: 'unknown' }, { state: 'present', group: 'g1', manifest: SOME_BYTES, createdAt: 3 }, { state: 'present', group: 'g1', manifest: SOME_BYTES, createdAt: 3, replicas: [{ peerId: PEER, addrs: ['/memory/x'] }] }],
  GetRequestSchema: [{ id: FILE_ID, offset: 0, length: 100 }],
  GetHeaderSchema: [{ first: 0, last: -1 }, { first: 1, last: 3 }],
  DeleteRequestSchema: [{ id: FILE_ID }],
  DeleteResultSchema: [{ id: FILE_ID, group: 'g1', replicas: [PEER] }],
  DeleteOpSchema: [DELETE_OP],
  ApplyRequestSchema: [{ op: DELETE_OP }],
  ApplyResultSchema: [{ effect: 'deleted' }],
  LogEntrySchema: [LOG_ADD, LOG_DELETE],
  SyncRequestSchema: [{ group: 'g1', since: 0, limit: 500 }],
  SyncResponseSchema: [{ entries: [LOG_ADD, LOG_DELETE], head: 2, more: false }],
  RecruitRequestSchema: [{ group: 'g1' }, { group: 'g1', replaces: PEER }],
  RecruitResponseSchema: [{ accepted: true }, { accepted: false, reason: 'full' }],
  ListRequestSchema: [{ afterSeq: 0, limit: 100 }],
  FileSummarySchema: [SUMMARY],
  ListResponseSchema: [{ group: 'g1', files: [SUMMARY], more: false }, { group: null, files: [], more: true }],
  SwarmAnnounceSchema: [{ id: FILE_ID, addrs: ['/memory/x'], have: new Uint8Array([0xff, 0x01]) }, { id: FILE_ID, addrs: [], have: new Uint8Array(0), leave: true }],
  SwarmPeersSchema: [{ peers: [{ peerId: PEER, addrs: ['/memory/x'], have: new Uint8Array([1]) }] }],
  ErrorFrameSchema: [{ code: 'ERR_X', message: 'no' }],
  count: [0, 12345],
  peerIdString: [PEER],
  fileId: [FILE_ID],
  // The S3 namespace (src/wire/names.ts).
  bucketName: ['media', 'a.b-c9', '.access-keys'],
  objectKey: ['clips/a.mp4', 'é 日本/😀'],
  ObjectRecordSchema: [OBJECT],
  BucketRecordSchema: [{ created: 1, publicRead: false }],
  NameOpSchema: [NAME_OP, { ...NAME_OP, key: '', live: false, value: undefined }],
  NameRowSchema: [NAME_ROW],
  NamesRequestSchema: [{ op: 'write', bucket: 'media', key: 'k', live: true, value: SOME_BYTES }, { op: 'write', bucket: 'media', key: '', live: false, ifEmpty: true }, { op: 'get', bucket: 'media', key: 'k' }, { op: 'list', bucket: 'media', after: '', limit: 10 }, { op: 'buckets' }],
  NamesResponseSchema: [{}, { row: NAME_ROW }, { rows: [NAME_ROW], more: false }, { written: { ts: 1, origin: PEER, copies: 2 } }],
  NameApplyRequestSchema: [{ group: 'g1', op: NAME_OP }],
  NameApplyResponseSchema: [{ effect: 'applied' }, { effect: 'ignored', holds: { ts: 9, origin: PEER } }],
  NameSyncRequestSchema: [{ group: 'g1', since: 0, limit: 100 }],
  NameSyncResponseSchema: [{ entries: [NAME_ROW], head: 4, more: false }],
  UploadRecordSchema: [{ key: 'big.mp4', created: 1, mime: 'video/mp4', meta: {} }],
  s3BucketName: ['media'],
  AccessKeyRecordSchema: [{ sealed: [SOME_BYTES], buckets: ['media'], read: true, write: false, created: 1, name: 'ci' }, { sealed: [SOME_BYTES], buckets: [], read: true, write: true, created: 2 }],
  PartRecordSchema: [{ file: FILE_ID, size: 5_242_880, etag: '"abc"', modified: 1 }]
}

const SCHEMAS: Array<[string, z.ZodType<unknown>]> = [...Object.entries(messages) as Array<[string, unknown]>, ...Object.entries(names) as Array<[string, unknown]>, ['ErrorFrameSchema', ErrorFrameSchema] as [string, unknown]]
  .flatMap(([name, value]): Array<[string, z.ZodType<unknown>]> => value instanceof z.ZodType ? [[name, value as z.ZodType<unknown>]] : [])

/** Split bytes into a Uint8ArrayList of `pieces` parts (decoders take both). */
function asList (bytes: Uint8Array, pieces: number): Uint8ArrayList {
  const list = new Uint8ArrayList()
  const step = Math.max(1, Math.ceil(bytes.byteLength / pieces))
  for (let at = 0; at < bytes.byteLength; at += step) list.append(bytes.slice(at, at + step))
  return list
}

describe('fuzz: wire decoders (decodeMessage with every schema)', () => {
  it('the hand-written samples are valid messages', () => {
    for (const [name, schema] of SCHEMAS) {
      for (const s of SAMPLES[name] ?? []) expect(schema.safeParse(s).success, name).toBe(true)
    }
  })

  it.each(SCHEMAS)('%s: a valid message or InvalidMessageError / MessageTooLargeError, at once', (name, schema) => {
    const samples = SAMPLES[name] ?? []
    const limit = fc.oneof({ weight: 5, arbitrary: fc.constant(MAX_CONTROL_FRAME_BYTES) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 256 }) })
    fc.assert(fc.property(decoderInputArb(samples), limit, fc.integer({ min: 0, max: 3 }), (bytes, maxBytes, pieces) => {
      const started = performance.now()
      let out: unknown
      let error: unknown
      try {
        out = decodeMessage(schema, pieces === 0 ? bytes : asList(bytes, pieces), maxBytes)
      } catch (err) {
        error = err
      }
      expect(performance.now() - started).toBeLessThan(1000)
      if (error !== undefined) {
        expect(errName(error)).toBe(bytes.byteLength > maxBytes ? 'MessageTooLargeError' : 'InvalidMessageError')
        return
      }
      expect(bytes.byteLength).toBeLessThanOrEqual(maxBytes)
      expect(schema.safeParse(out).success).toBe(true)
      // What we accept we can send on, and it means the same thing.
      expect(decodeMessage(schema, encodeMessage(schema, out), Number.MAX_SAFE_INTEGER)).toEqual(out)
    }), runs(samples.length > 0 ? 500 : 250))
    // No decoded key ever reached Object.prototype.
    expect(Object.keys(Object.prototype)).toEqual([])
  })
})

for (const [version, codec] of [['3.0.0', CHANNEL_V3], ['2.0.0', CHANNEL_V2]] as const) {
  describe(`fuzz: upload channel frames, ${version} (src/wire/channel-frames*.ts)`, () => {
    const VALID = [{ put: CHANNEL_PUT }, { put: { ...CHANNEL_PUT, chunk: new Uint8Array(0) } }, { decide: { u: 0, commit: false } }, { decide: { u: 7, commit: true, ack: true as const } }, { name: { u: 2, req: SOME_BYTES } }]
    const encoded = VALID.map(r => codec.encodeRequest(r).subarray())

    it('decodes what it encodes, the chunk as a view of the frame', () => {
      VALID.forEach((r, i) => { expect(codec.decodeRequest(encoded[i] as Uint8Array, MAX_CONTROL_FRAME_BYTES)).toEqual(r) })
      const frame = encoded[0] as Uint8Array
      expect(codec.decodeRequest(frame, MAX_CONTROL_FRAME_BYTES).put?.chunk.buffer).toBe(frame.buffer)
    })

    it('a request, or InvalidMessageError / MessageTooLargeError, at once, for any bytes', () => {
      const mutated = fc.tuple(fc.constantFrom(...encoded), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat()).map(([bytes, edits, cut]) => {
        const b = bytes.slice(0, cut % (bytes.byteLength + 1) === 0 ? bytes.byteLength : cut % (bytes.byteLength + 1))
        for (const [at, v] of edits) if (b.byteLength > 0) b[at % b.byteLength] = v
        return b
      })
      const input = fc.oneof(mutated, fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 8 }).map(head => Uint8Array.of(0x01, ...head)))
      fc.assert(fc.property(input, fc.constantFrom(MAX_CONTROL_FRAME_BYTES, 64), (bytes, maxBytes) => {
        const started = performance.now()
        try {
          const req = codec.decodeRequest(bytes, maxBytes)
          // What we accept we can send on, and it means the same thing.
          expect(codec.decodeRequest(codec.encodeRequest(req).subarray(), Number.MAX_SAFE_INTEGER)).toEqual(req)
        } catch (err) {
          expect(['InvalidMessageError', 'MessageTooLargeError']).toContain(errName(err))
        }
        expect(performance.now() - started).toBeLessThan(1000)
      }), runs(500))
    })
  })
}

describe('the channel\'s binary put fields (src/wire/put-fields.ts) against their schema', () => {
  // Field values a peer could send, valid or not (what the layout can carry: non-negative integers,
  // byte strings of up to 255 bytes); the decoder must accept exactly what ChannelPutMetaSchema accepts.
  const int = fc.oneof({ arbitrary: fc.integer({ min: 1, max: 64 }), weight: 8 }, fc.nat(70), fc.constantFrom(0, 1, 64, 65, 1_048_576, 4 * 2 ** 20, 4 * 2 ** 20 + 1, Number.MAX_SAFE_INTEGER), fc.maxSafeNat())
  const text = fc.oneof({ arbitrary: fc.constantFrom('g1', 'A.b_c-9', PEER), weight: 12 },
    fc.constantFrom('-g', '', PEER.replace('1', '0'), 'x'.repeat(64), 'y'.repeat(65), 'Q'.repeat(128), 'Q'.repeat(129)),
    fc.string({ unit: 'binary-ascii', maxLength: 140 }), fc.string({ unit: 'binary', maxLength: 8 }).filter(t => [...t].every(ch => ch.charCodeAt(0) < 256)))
  const fields = fc.record({ u: int, chunkSize: int, createdAt: int, ts: int, copies: int, group: text, origin: text, members: fc.oneof(fc.array(text, { maxLength: 66 }), fc.constantFrom(new Array(64).fill(PEER), new Array(65).fill(PEER), [])), manifest: fc.uint8Array({ maxLength: 64 }), name: fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined }) })
  const frameOf = (f: { u: number, chunkSize: number, createdAt: number, ts: number, copies: number, group: string, origin: string, members: string[], manifest: Uint8Array, name?: Uint8Array }): Uint8Array => {
    const w = new ByteWriter()
    w.byte(0x01)
    for (const n of [f.u, f.chunkSize, f.createdAt, f.ts, f.copies]) w.varint(n)
    w.str(f.group)
    w.str(f.origin)
    w.byte(f.members.length)
    for (const m of f.members) w.str(m)
    w.varint(f.manifest.byteLength)
    w.bytes(f.manifest)
    w.byte(f.name != null ? 1 : 0)
    if (f.name != null) { w.varint(f.name.byteLength); w.bytes(f.name) }
    w.bytes(SOME_BYTES)
    return w.done().slice()
  }

  it('accepts exactly what the schema accepts, and means the same', () => {
    let accepted = 0
    fc.assert(fc.property(fields, f => {
      const meta = { u: f.u, group: f.group, chunkSize: f.chunkSize, prepare: { manifest: f.manifest, createdAt: f.createdAt, ts: f.ts, origin: f.origin, copies: f.copies, members: f.members, ...(f.name != null ? { name: f.name } : {}) } }
      const valid = messages.ChannelPutMetaSchema.safeParse(meta).success
      let decoded: unknown
      try {
        decoded = decodeChannelRequest(frameOf(f), 2 * MAX_CONTROL_FRAME_BYTES)
      } catch (err) {
        expect(errName(err)).toBe('InvalidMessageError')
        expect(valid).toBe(false)
        return
      }
      expect(valid).toBe(true)
      accepted++
      expect(decoded).toEqual({ put: { ...meta, chunk: SOME_BYTES } })
      // And our encoder writes the same bytes for it.
      expect(encodeChannelRequest(decoded as never).subarray()).toEqual(frameOf(f))
    }), runs(2000))
    // Both sides of the line were tried, not only the refusals.
    expect(accepted).toBeGreaterThan(100)
  })

  it('refuses a varint that is not in its shortest form, or too long', () => {
    const put = encodeChannelRequest({ put: CHANNEL_PUT }).subarray()
    // u = 0 written as 0x80 0x00: the same number, another encoding.
    expect(() => decodeChannelRequest(Uint8Array.of(0x01, 0x80, 0x00, ...put.subarray(2)), MAX_CONTROL_FRAME_BYTES)).toThrow(/shortest form/)
    expect(() => decodeChannelRequest(Uint8Array.of(0x01, ...new Array(9).fill(0xff)), MAX_CONTROL_FRAME_BYTES)).toThrow(/at most 8 bytes/)
  })
})

describe('fuzz: upload channel answers (src/wire/channel-frames.ts)', () => {
  const VALID = [{ u: 3, prepared: true as const }, { u: 2 ** 40, prepared: true as const }, { u: 5, named: SOME_BYTES }, { u: 6, decided: { applied: false, holds: { ts: 9, origin: PEER } } }, { u: 4, error: { code: 'ERR_X', message: 'no' } }, { error: { code: 'ERR_PEER_UNAUTHORIZED', message: 'no' } }]
  const encoded = VALID.map(a => { const e = encodeChannelAnswer(a); return e instanceof Uint8Array ? e : e.subarray() })

  it('decodes what it encodes; "prepared" is three bytes or so', () => {
    VALID.forEach((a, i) => { expect(decodeChannelAnswer(encoded[i] as Uint8Array, MAX_CONTROL_FRAME_BYTES)).toEqual(a) })
    expect(encoded[0]).toEqual(Uint8Array.of(0x01, 3))
  })

  it('an answer, or InvalidMessageError / MessageTooLargeError, for any bytes', () => {
    const mutated = fc.tuple(fc.constantFrom(...encoded), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat()).map(([bytes, edits, cut]) => {
      const b = bytes.slice(0, cut % (bytes.byteLength + 1) === 0 ? bytes.byteLength : cut % (bytes.byteLength + 1))
      for (const [at, v] of edits) if (b.byteLength > 0) b[at % b.byteLength] = v
      return b
    })
    fc.assert(fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 64 })), fc.constantFrom(MAX_CONTROL_FRAME_BYTES, 16), (bytes, maxBytes) => {
      try {
        const a = decodeChannelAnswer(bytes, maxBytes)
        expect(messages.ChannelAnswerSchema.safeParse(a).success).toBe(true)
        const again = encodeChannelAnswer(a)
        expect(decodeChannelAnswer(again instanceof Uint8Array ? again : again.subarray(), Number.MAX_SAFE_INTEGER)).toEqual(a)
      } catch (err) {
        expect(['InvalidMessageError', 'MessageTooLargeError']).toContain(errName(err))
      }
    }), runs(500))
  })
})

// ==== FrameReader ================================================================
