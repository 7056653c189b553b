"""Data movement: concat, slice, reshape, pad, space_to_depth, depth_to_space, feature_shuffle
(docs/numerics.md, "Other layers"). All but concat keep their input's tensor (s, z, b) and move
codes; concat requantizes the inputs whose (s, z) differ from its output's:
    q = clamp(((q_i - z_i) * M_i + 2^(r_i-1)) >> r_i) + z, 0, 2^b - 1),  M_i 2^-r_i ~= s_i / s
and a pad writes the code of its constant on the output's grid: clamp(rhe(c / s) + z, 0, 2^b - 1).
"""
from __future__ import annotations

import numpy as np

from .._lazy import kernels as K
from .._lazy import tf
from ..hn import Layer
from ..numerics.params import derive_rescale, qmax, rhe
from ..quant_errors import ConcatWidthError
from .base import I32, LayerKind, reshape_out


class Concat(LayerKind):
    types = ("concat",)

    def float_op(self, layer, inputs, params):
        return tf.concat(inputs, axis=int(layer.params["concat_axis"]))

    def out_bits(self, d, layer, cfg):
        """A concat's inputs must share one width, which its output keeps (an explicit precision
        mode of another width is an error too)."""
        srcs = [d.source(layer, i) for i in range(len(layer.input))]
        b0 = d.tq[srcs[0]].bits
        for s in srcs[1:]:
            if d.tq[s].bits != b0:
                raise ConcatWidthError(layer.name, srcs[0], b0, s, d.tq[s].bits)
        if cfg.explicit_mode and cfg.out_bits != b0:
            raise ConcatWidthError(layer.name, srcs[0], b0, f"{layer.name} (its own precision_mode)",
                                   cfg.out_bits)
        return b0

    def derive(self, d, layer, cfg):
        name, out = layer.name, d.tq[layer.name]
        for i in range(len(layer.input)):
            ti = d.tq[d.source(layer, i)]
            if (ti.scale, ti.zp) != (out.scale, out.zp):
                M, r = derive_rescale(np.float64(ti.scale) / np.float64(out.scale), out.bits, name,
                                      f"requantization of input {i}")
                d.put(name, f"in{i}_M", np.array(M[0], np.int32))
                d.put(name, f"in{i}_r", np.array(r[0], np.int32))

    def numeric(self, q, layer, ins):
        name, out = layer.name, q.tensor(layer.name)
        parts = []
        for i, qi in enumerate(ins):
            if q.has(name, f"in{i}_M"):
                ti = q.tensor(q.source(layer, i))
                qi = K.requantize(K.centred_acc(qi, ti.zp, ti.bits), q.get(name, f"in{i}_M"),
                                  q.get(name, f"in{i}_r"), out.zp, 0, qmax(out.bits), out.bits)
            parts.append(qi)
        return K.concat_codes(parts, int(layer.params["concat_axis"]))

    def fake_quant(self, f, layer, ins):
        name, out = layer.name, f.tensor(layer.name)
        parts = []
        for i, xv in enumerate(ins):
            if f.has(name, f"in{i}_M"):
                m = float(f.get(name, f"in{i}_M")) * 2.0 ** -int(f.get(name, f"in{i}_r"))
                tin = f.tensor(f.source(layer, i))
                xv = f.unit(f"{name}/in{i}", [xv], lambda v, t=tin: f.ste_centred(v, t), m, out)
            parts.append(xv)
        return tf.concat(parts, axis=int(layer.params["concat_axis"]))

    def fields(self, layer):
        # present exactly for the inputs to requantize: checked with the values
        out = {}
        for i in range(len(layer.input)):
            out[f"in{i}_M"] = (I32, (), False)
            out[f"in{i}_r"] = (I32, (), False)
        return out

    def check_width(self, c, layer, tq):
        for i in range(len(layer.input)):
            src = c.source(layer, i)
            if c.tq[src].bits != tq.bits:
                raise c.fail(layer.name, "out_bits", f"expected {c.tq[src].bits}, the width of its input "
                                                     f"{i} '{src}': a concat's inputs and output share one "
                                                     f"width; found {tq.bits}")

    def check(self, c, layer):
        name, out = layer.name, c.tq[layer.name]
        for i in range(len(layer.input)):
            fM, fr = f"in{i}_M", f"in{i}_r"
            src = c.source(layer, i)
            ti = c.tq[src]
            differ = (ti.scale, ti.zp) != (out.scale, out.zp)
            for fld in (fM, fr):
                if differ and fld not in c.fields[name]:
                    raise c.fail(name, fld, f"missing: input {i} '{src}' has scale {c.fmt(ti.scale)}, "
                                            f"zero point {ti.zp} and the output scale {c.fmt(out.scale)}, "
                                            f"zero point {out.zp}, so it is requantized with "
                                            f"in{i}_M, in{i}_r (int32 [])")
                if not differ and fld in c.fields[name]:
                    raise c.fail(name, fld, f"unexpected: input {i} '{src}' already has the output's "
                                            f"scale and zero point, so it is copied, not requantized")
            if not differ:
                continue
            c.check_rescale(name, fM, fr, out.bits)
            if c.rederive:
                c.rederived_rescale(name, fM, fr, np.float64(ti.scale) / np.float64(out.scale),
                                    out.bits, f"requantization of input {i}")


class Slice(LayerKind):
    types = ("slice",)
    passthrough = True
    xla = False

    def float_op(self, layer, inputs, params):
        b, e = layer.params["begin"], layer.params["end"]
        return inputs[0][(slice(None),) + tuple(slice(bb, ee) for bb, ee in zip(b, e))]

    def numeric(self, q, layer, ins):
        return K.slice_codes(ins[0], layer.params["begin"], layer.params["end"])


class Reshape(LayerKind):
    types = ("reshape",)
    passthrough = True
    xla = False

    def float_op(self, layer, inputs, params):
        return reshape_out(inputs[0], layer)

    def numeric(self, q, layer, ins):
        return reshape_out(ins[0], layer)


def _pads(layer: Layer) -> list[list[int]]:
    return [[0, 0]] + [list(p) for p in layer.params["pads"]]


def pad_code(layer: Layer, out) -> int:
    """The code of the pad constant on the output's grid."""
    c = float(layer.params.get("constant_value", 0.0))
    return int(np.clip(rhe(c / np.float64(out.scale)) + out.zp, 0, qmax(out.bits)))


class Pad(LayerKind):
    types = ("pad",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        return K.pad_const(inputs[0], _pads(layer), float(layer.params.get("constant_value", 0.0)))

    def derive(self, d, layer, cfg):
        d.put(layer.name, "pad_code", np.array(pad_code(layer, d.tq[layer.name]), np.int32))

    def numeric(self, q, layer, ins):
        return K.pad_codes(ins[0], layer.params["pads"], int(q.get(layer.name, "pad_code")))

    def fake_quant(self, f, layer, ins):
        out = f.tensor(layer.name)
        v = np.float32((int(f.get(layer.name, "pad_code")) - out.zp) * np.float32(out.scale))
        return K.pad_const(ins[0], _pads(layer), v)

    def fields(self, layer):
        return {"pad_code": (I32, (), True)}

    def check(self, c, layer):
        name, out = layer.name, c.tq[layer.name]
        c.int_range(name, "pad_code", 0, qmax(out.bits), f"a code of a {out.bits}-bit tensor")
        if c.rederive:
            want, have = pad_code(layer, out), int(c.item(name, "pad_code"))
            if have != want:
                raise c.fail(name, "pad_code", f"expected {want}, the code of the constant "
                                               f"{float(layer.params.get('constant_value', 0.0))} on the "
                                               f"output's grid, found {have}")


class SpaceToDepth(LayerKind):
    types = ("space_to_depth",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        return tf.nn.space_to_depth(inputs[0], int(layer.params["block_size"]))

    def numeric(self, q, layer, ins):
        return K.space_to_depth(ins[0], int(layer.params["block_size"]))


class DepthToSpace(LayerKind):
    types = ("depth_to_space",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        bs = int(layer.params["block_size"])
        if layer.params.get("mode", "DCR") == "DCR":
            return tf.nn.depth_to_space(inputs[0], bs)
        _, h, w, c = layer.input_shapes[0]
        co = c // (bs * bs)
        y = tf.reshape(inputs[0], [-1, h, w, co, bs, bs])  # CRD: channel index = c * bs^2 + r * bs + s
        y = tf.transpose(y, [0, 1, 4, 2, 5, 3])
        return tf.reshape(y, [-1, h * bs, w * bs, co])

    def numeric(self, q, layer, ins):
        return K.depth_to_space(ins[0], int(layer.params["block_size"]), layer.params.get("mode", "DCR"))


class FeatureShuffle(LayerKind):
    types = ("feature_shuffle",)
    passthrough = True

    def float_op(self, layer, inputs, params):
        g = int(layer.params["groups"])
        shp = layer.input_shapes[0]
        y = tf.reshape(inputs[0], [-1] + shp[1:-1] + [g, shp[-1] // g])
        perm = list(range(len(shp) + 1))
        perm[-2], perm[-1] = perm[-1], perm[-2]
        return tf.reshape(tf.transpose(y, perm), [-1] + shp[1:])

    def numeric(self, q, layer, ins):
        return K.feature_shuffle(ins[0], int(layer.params["groups"]))


KINDS = (Concat(), Slice(), Reshape(), Pad(), SpaceToDepth(), DepthToSpace(), FeatureShuffle())
