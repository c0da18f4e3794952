// Answers arriving for open bid rounds (actors/orchestrator/effects.ts OpenRounds): bids and declines are taken
// only from the node they name (the transport authenticated the sender); a decline's signature is not checked
// (it grants and binds nothing), but a decline relayed for another node or malformed is refused.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { OpenRounds } from '../orchestrator/effects.ts'
import { signDecline } from '../bidding/messages.ts'
import type { BidRound } from '../deployment/model.ts'
import { InvalidTermsError } from '../errors.ts'

t.test('declines: from the node they name, well formed; relayed or malformed ones refused', async (t) => {
  const rounds = new OpenRounds()
  const round: BidRound = { requestId: 'req-1', asked: [], bids: [], declines: [], silent: [], rttMs: {}, offers: [] }
  rounds.open(round)
  const a = NodeKey.generate()
  const b = NodeKey.generate()
  const declined = signDecline(a, 'req-1', ['no gpu'])
  t.throws(() => rounds.arrived({ decline: declined }, b.did, Date.now()), InvalidTermsError, 'A\'s decline sent by B: refused')
  t.equal(round.declines.length, 0)
  t.throws(() => rounds.arrived({ decline: { body: { ...declined.body, reasons: 'x' }, sig: declined.sig } }, a.did, Date.now()), InvalidTermsError, 'malformed: refused')
  t.throws(() => rounds.arrived({ decline: { body: declined.body } }, a.did, Date.now()), InvalidTermsError, 'no signature field: refused')
  rounds.arrived({ decline: declined }, a.did, Date.now())
  rounds.arrived({ decline: declined }, a.did, Date.now())
  t.same(round.declines.map((d) => [d.node, d.reasons]), [[a.did, ['no gpu']]], 'from A itself: taken, once')
  rounds.arrived({ decline: signDecline(b, 'req-other', ['busy']) }, b.did, Date.now())
  t.equal(round.declines.length, 1, 'a decline for a round that is not open changes nothing')
})
