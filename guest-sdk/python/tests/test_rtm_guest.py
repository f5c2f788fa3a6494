"""Unit tests of rtm_guest's pure parts under plain CPython (no component build).

    python3 -m unittest discover -s guest-sdk/python/tests

Host calls need a component; those paths are covered by the probe guest in
guest-sdk/js/test/components.test.mjs.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rtm_guest import Ctx, Plugin, PluginError, validate  # noqa: E402


class ValidateTest(unittest.TestCase):
    def code(self, value, shape):
        with self.assertRaises(PluginError) as cm:
            validate(value, shape, "ev")
        return cm.exception.code

    def test_fields_and_optional(self):
        shape = {"roomId": "string", "limit": "u32?", "extra": "any?"}
        self.assertEqual(validate({"roomId": "r", "x": 1}, shape), {"roomId": "r", "limit": None, "extra": None})
        self.assertEqual(validate({"roomId": "r", "limit": None}, shape)["limit"], None)
        self.assertEqual(validate({"roomId": "r", "limit": 7}, shape)["limit"], 7)

    def test_refusals(self):
        self.assertEqual(self.code(None, {"a": "string"}), "invalid_payload")
        self.assertEqual(self.code("x", {"a": "string"}), "invalid_payload")
        self.assertEqual(self.code({}, {"a": "string"}), "invalid_payload")
        self.assertEqual(self.code({"a": None}, {"a": "string"}), "invalid_payload")
        self.assertEqual(self.code({"a": 1}, {"a": "string"}), "invalid_payload")
        self.assertEqual(self.code({"n": -1}, {"n": "u32"}), "invalid_payload")
        self.assertEqual(self.code({"n": 2**32}, {"n": "u32"}), "invalid_payload")
        self.assertEqual(self.code({"n": True}, {"n": "integer"}), "invalid_payload")
        self.assertEqual(self.code({"n": 1.5}, {"n": "integer"}), "invalid_payload")
        self.assertEqual(self.code({"w": ["a", 1]}, {"w": "string[]"}), "invalid_payload")
        self.assertEqual(self.code({}, {"c": "any"}), "invalid_payload")

    def test_any_accepts_null_when_present(self):
        self.assertEqual(validate({"c": None}, {"c": "any"}), {"c": None})

    def test_positional_form(self):
        shape = {"roomId": "string", "text": "string"}
        self.assertEqual(validate(["r", "hi"], shape), {"roomId": "r", "text": "hi"})
        self.assertEqual(self.code(["r"], shape), "invalid_payload")
        self.assertEqual(self.code(["r", "hi", "x"], shape), "invalid_payload")

    def test_messages_name_event_and_field(self):
        with self.assertRaises(PluginError) as cm:
            validate({"roomId": 5}, {"roomId": "string"}, "chat:message")
        self.assertIn("chat:message", cm.exception.message)
        self.assertIn("roomId", cm.exception.message)


class RoutingTest(unittest.TestCase):
    def setUp(self):
        self.p = Plugin("t", "0.1.0")

        @self.p.on("a:exact")
        def exact(ctx):
            return "exact"

        @self.p.on("a:*")
        def short(ctx):
            return "short"

        @self.p.on("a:long:*")
        def long(ctx):
            return "long"

        @self.p.on("a:raise")
        def boom(ctx):
            raise PluginError("custom", "msg")

    def run_event(self, event, payload="null"):
        return self.p.dispatch(Ctx("s", None, event, payload))

    def test_routes(self):
        self.assertEqual(self.run_event("a:exact"), '"exact"')
        self.assertEqual(self.run_event("a:long:x"), '"long"')
        self.assertEqual(self.run_event("a:other"), '"short"')
        self.assertEqual(sorted(self.p.events()), ["a:*", "a:exact", "a:long:*", "a:raise"])

    def test_errors(self):
        with self.assertRaises(PluginError) as cm:
            self.run_event("b:nope")
        self.assertEqual(cm.exception.code, "unknown_event")
        with self.assertRaises(PluginError) as cm:
            self.run_event("a:raise")
        self.assertEqual((cm.exception.code, cm.exception.message), ("custom", "msg"))

    def test_payload_json_errors(self):
        ctx = Ctx("s", None, "ev", "{not json")
        with self.assertRaises(PluginError) as cm:
            ctx.payload()
        self.assertEqual(cm.exception.code, "invalid_payload")

    def test_user_or(self):
        err = PluginError("not_joined", "x")
        self.assertEqual(Ctx("s", "u", "e", "null").user_or(err), "u")
        with self.assertRaises(PluginError):
            Ctx("s", None, "e", "null").user_or(err)


if __name__ == "__main__":
    unittest.main()
