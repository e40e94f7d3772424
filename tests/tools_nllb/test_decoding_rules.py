"""tools/nllb_reference.py's decoding rules (docs/model-format.md) on a scripted model whose
next-token distribution depends only on the last token, with expectations worked out by hand."""
import math
import unittest

import nllb_test_util  # noqa: F401  (sets sys.path to tools/)

import torch

import nllb_reference as ref

V = 6
EOS, TGT = 2, 5


class MarkovModel:
    """logits(next | last token) = log of the probabilities in `table` (unlisted tokens ~ 1e-9)."""

    def __init__(self, table):
        self.logits = torch.full((V, V), math.log(1e-9))
        for last, probs in table.items():
            for tok, p in probs.items():
                self.logits[last, tok] = math.log(p)
        self.fed = []

    def encode(self, ids, mask):
        return torch.zeros(ids.size(0), ids.size(1), 1)

    def cross_kv(self, enc):
        return [enc.unsqueeze(1)]

    def empty_cache(self, batch):
        return [torch.zeros(batch, 1, 0, 1)]

    def decode_step(self, ids, positions, kv, self_mask, cross, enc_mask):
        self.fed.append((ids.view(-1).tolist(), positions.view(-1).tolist(), tuple(self_mask.shape)))
        new = [torch.cat([kv[0], ids.view(-1, 1, 1, 1).float()], dim=2)]
        return self.logits[ids.view(-1)].clone(), new


def lp_model(a):
    """After the language token: </s> with probability e^-a, token 3 with e^-0.895 (then </s>
    with 0.9), token 4 with the rest (then 50/50 </s> or 4)."""
    p_eos = math.exp(-a)
    p3 = math.exp(-0.895)
    return MarkovModel({2: {TGT: 1.0}, TGT: {EOS: p_eos, 3: p3, 4: 1 - p_eos - p3},
                        3: {EOS: 0.9, 4: 0.1}, 4: {EOS: 0.5, 4: 0.5}})


class DecodingRulesTest(unittest.TestCase):
    def test_greedy_feeds_start_and_language_then_stops_at_eos(self):
        m = MarkovModel({2: {4: 1.0}, TGT: {3: 0.6, 4: 0.4}, 3: {4: 0.7, EOS: 0.3}, 4: {EOS: 0.8, 3: 0.2}})
        r = ref.greedy(m, [TGT, 3, EOS], TGT, 10)
        # the model's preference after token 2 (4) is ignored: the language token is forced
        self.assertEqual(r.ids, [3, 4])
        self.assertTrue(r.ended_with_eos)
        self.assertEqual([f[0] for f in m.fed], [[2], [TGT], [3], [4]])
        self.assertEqual([f[1] for f in m.fed], [[2], [3], [4], [5]])  # decoder positions 2 + i
        self.assertEqual([f[2] for f in m.fed], [(1, 1), (1, 2), (1, 3), (1, 4)])
        self.assertEqual(len(r.margins), 3)
        self.assertAlmostEqual(r.margins[0], math.log(0.6) - math.log(0.4), places=5)

    def test_greedy_max_length_counts_generated_tokens(self):
        m = MarkovModel({TGT: {3: 1.0}, 3: {4: 1.0}, 4: {3: 1.0}})
        r = ref.greedy(m, [TGT, EOS], TGT, 5)
        self.assertEqual(r.ids, [3, 4, 3, 4, 3])
        self.assertFalse(r.ended_with_eos)

    def test_greedy_ties_take_the_lowest_id(self):
        m = MarkovModel({TGT: {4: 0.4, 3: 0.4, EOS: 0.2}, 3: {EOS: 1.0}, 4: {EOS: 1.0}})
        self.assertEqual(ref.greedy(m, [TGT, EOS], TGT, 5).ids, [3])

    def test_fixed_length_does_not_stop_at_eos(self):
        m = MarkovModel({TGT: {EOS: 0.9, 3: 0.1}, EOS: {EOS: 1.0}})
        r = ref.greedy(m, [TGT, EOS], TGT, 4, fixed_length=True)
        self.assertEqual(r.ids, [EOS] * 4)
        self.assertFalse(r.ended_with_eos)

    def test_length_penalty_counts_the_language_token(self):
        # finished hypotheses: A = [] (</s> first, score -a, n = 2) and B = [3] (score -1.0, n = 3).
        # lp 1: A -a/2 vs B -1/3. a = 0.6 -> A (-0.300 > -0.333); a = 0.7 -> B (-0.350 < -0.333).
        # (Counting only generated tokens, n = 1 and 2, would pick B for both.)
        r = ref.beam_search(lp_model(0.6), [TGT, EOS], TGT, 2, 1.0, 10)
        self.assertEqual(r.ids, [])
        self.assertAlmostEqual(r.score, -0.3, places=4)
        r = ref.beam_search(lp_model(0.7), [TGT, EOS], TGT, 2, 1.0, 10)
        self.assertEqual(r.ids, [3])
        self.assertAlmostEqual(r.score, (-0.895 + math.log(0.9)) / 3, places=4)
        # lp 0 compares raw scores: A (-0.7) beats B (-1.0)
        self.assertEqual(ref.beam_search(lp_model(0.7), [TGT, EOS], TGT, 2, 0.0, 10).ids, [])

    def test_beam_stops_early_when_live_beams_cannot_win(self):
        m = lp_model(0.6)
        ref.beam_search(m, [TGT, EOS], TGT, 2, 1.0, 50)
        # feeds: 2, the language token, then the two live beams after step 1 (best first). After
        # step 2 two hypotheses are finished and the best live beam (-3.198 / 3) is below the
        # worst finished (-1/3): the live beams are never fed again
        self.assertEqual([f[0] for f in m.fed], [[2], [TGT], [3, 4]])

    def test_beam_at_max_length_offers_live_beams(self):
        # no </s> is ever likely: the best live beam at max_length wins, scored with n = 1 + max_length
        m = MarkovModel({TGT: {3: 0.6, 4: 0.4}, 3: {3: 0.9, 4: 0.1}, 4: {4: 0.5, 3: 0.5}})
        r = ref.beam_search(m, [TGT, EOS], TGT, 2, 1.0, 3)
        self.assertEqual(r.ids, [3, 3, 3])
        self.assertFalse(r.ended_with_eos)
        self.assertAlmostEqual(r.score, (math.log(0.6) + 2 * math.log(0.9)) / 4, places=4)

    def test_eos_below_rank_k_is_not_finished(self):
        # k = 2. Step 1: 3 (0.5), 4 (0.3), </s> (0.2) -> </s> has rank 2: skipped.
        # Step 2: 3->3 0.5*0.98, 4->4 0.3*0.98, then </s> (rank 2) from each: skipped...
        # With max_length 2 the winner is a live beam, never the rank-2 </s>.
        m = MarkovModel({TGT: {3: 0.5, 4: 0.3, EOS: 0.2}, 3: {3: 0.98, EOS: 0.02}, 4: {4: 0.98, EOS: 0.02}})
        r = ref.beam_search(m, [TGT, EOS], TGT, 2, 1.0, 2)
        self.assertEqual(r.ids, [3, 3])

    def test_beam_size_one_is_refused(self):
        with self.assertRaisesRegex(ValueError, "beam_size"):
            ref.beam_search(lp_model(0.6), [TGT, EOS], TGT, 1, 1.0, 5)


if __name__ == "__main__":
    unittest.main()
