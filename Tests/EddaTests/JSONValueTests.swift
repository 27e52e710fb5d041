@testable import Edda
import EddaTesting
import Foundation
import Testing

@Suite("JSONValue", .timeLimit(.minutes(2)))
struct JSONValueTests {
    // MARK: Linear time

    /// `depth` arrays (or objects with one member `a`) nested around a `0`.
    static func nest(_ depth: Int, objects: Bool) -> String {
        objects
            ? String(repeating: #"{"a":"#, count: depth) + "0" + String(repeating: "}", count: depth)
            : String(repeating: "[", count: depth) + "0" + String(repeating: "]", count: depth)
    }

    /// An array of maximally deep subtrees (arrays and objects in turn), just under 1 MiB, the
    /// HTTP body limit.
    static let deepBody: String = {
        var subtrees: [String] = []
        var size = 2
        while true {
            let subtree = nest(JSONValue.maximumNestingDepth - 2, objects: subtrees.count % 2 == 1)
            guard size + subtree.utf8.count + 1 <= 1 << 20 else { break }
            subtrees.append(subtree)
            size += subtree.utf8.count + 1
        }
        return "[" + subtrees.joined(separator: ",") + "]"
    }()

    /// The fastest of three runs.
    private func fastest(_ body: () throws -> Void) rethrows -> Duration {
        var best = Duration.seconds(3600)
        for _ in 0..<3 {
            let start = ContinuousClock.now
            try body()
            best = min(best, ContinuousClock.now - start)
        }
        return best
    }

    /// Compares with Foundation's parser on the same bytes in the same run, so a slow or busy
    /// machine slows both. Decoding through `JSONDecoder` (the former implementation) takes
    /// over 1 s for one 511-level nest, where Foundation takes well under 1 ms.
    static let deepInputs = [
        "511 nested arrays": nest(511, objects: false),
        "511 nested objects": nest(511, objects: true),
        "1 MiB of 510-level subtrees": deepBody,
    ]

    @Test("parsing takes time linear in the input: deep nests and a 1 MiB body of them", arguments: deepInputs.keys.sorted())
    func linearTime(_ name: String) throws {
        let text = try #require(Self.deepInputs[name])
        let data = Data(text.utf8)
        let foundation = try fastest { _ = try JSONSerialization.jsonObject(with: data, options: .fragmentsAllowed) }
        let ours = try fastest { _ = try JSONValue(parsing: data) }
        #expect(ours <= foundation * 20 + .milliseconds(50), "\(name): \(ours) against Foundation's \(foundation)")
        #expect(try JSONValue(parsing: text).jsonText == text)
    }

    @Test("Edda's own decoding of JSONValue uses the parser, not JSONDecoder")
    func internalDecodingUsesTheParser() throws {
        let text = #"{"deep":"# + Self.nest(400, objects: false) + #","n":9007199254740993}"#
        let members = try JSON.decode([String: JSONValue].self, from: text)
        #expect(members["n"]?.jsonText == "9007199254740993")
        #expect(try JSON.decode(JSONValue.self, from: text).jsonText == text)
        #expect(try JSON.decode([JSONValue].self, from: "[1e400]") == [.number(JSONNumber(jsonText: "1e400") ?? 0)])
        #expect(throws: DecodingError.self) { try JSON.decode([JSONValue].self, from: "{}") }
        #expect(try JSON.encode(JSONValue.object(members)) == text)
        #expect(try JSON.encode(["n": JSONValue.number(JSONNumber(UInt64.max))]) == #"{"n":18446744073709551615}"#)
        // Activity and workflow results of type JSONValue (1e400 does not decode as a Double).
        let envelope = try CompletedEnvelope<JSONValue>.decode(from: #"{"activity_name":"a","result":{"n":1e400}}"#)
        #expect(envelope.activityName == "a")
        #expect(envelope.result.jsonText == #"{"n":1e400}"#)
        #expect(try decodeResult("[9007199254740993,1e400]", as: [JSONValue].self) == [.number(JSONNumber(9_007_199_254_740_993)), .number(JSONNumber(jsonText: "1e400") ?? 0)])
        #expect(try decodeResult("null", as: JSONValue.self) == .null)
    }

    // MARK: Depth

    @Test("512 levels of nesting parse (as with Foundation); 513 give an error that names the limit")
    func depthLimit() throws {
        for objects in [false, true] {
            #expect(throws: Never.self) { try JSONValue(parsing: Self.nest(512, objects: objects)) }
            let error = try #require(throws: InvalidJSONError.self) {
                try JSONValue(parsing: Self.nest(513, objects: objects))
            }
            #expect(error.description.contains("nested more than 512 levels"))
            #expect(error.offset == (objects ? 512 * 5 : 512))
        }
        // Depth counts open containers, not how many were seen.
        let wide = "[" + Array(repeating: Self.nest(500, objects: false), count: 3).joined(separator: ",") + "]"
        #expect(throws: Never.self) { try JSONValue(parsing: wide) }
    }

    // MARK: Exact numbers

    @Test("numbers round-trip exactly from text to JSONValue and back", arguments: [
        "9007199254740993", "9223372036854775807", "-9223372036854775808", "18446744073709551615",
        "-0", "1e400", "-1e400", "1e-400", "1.5e-7", "1E+2", "0.1", "100000000000000000000000000000000000000001",
        "3.141592653589793238462643383279502884197",
    ])
    func exactNumbers(_ literal: String) throws {
        #expect(try JSONValue(parsing: literal).jsonText == literal)
        #expect(try JSONValue(parsing: "[\(literal)]").jsonText == "[\(literal)]")
        #expect(try JSONValue(parsing: #" {"n" : \#(literal)} "#).jsonText == #"{"n":\#(literal)}"#)
        #expect(JSONNumber(jsonText: literal)?.description == literal)
    }

    @Test("exact numbers survive a workflow: its stored input, an activity's replayed result, its output")
    func exactNumbersThroughAWorkflow() async throws {
        try await TemporaryDatabase.with { database in
            try await database.withApp { app in
                let echo = ActivityDefinition<JSONValue, JSONValue>(name: "echo") { input, _ in ["echoed": input] }
                app.register(workflow: "exact") { (input: JSONValue, context: WorkflowContext) -> JSONValue in
                    let echoed = try await context.run(echo, input: input)
                    // Resuming after the timer replays the activity's result from history.
                    try await context.sleep(for: .milliseconds(1))
                    return echoed
                }
                let input = #"{"big":9223372036854775807,"huge":1e400,"odd":9007199254740993,"small":1.5e-7,"zero":-0}"#
                let id = try await app.startDetached(workflowNamed: "exact", inputJSON: input)
                let output = try await app.result(of: id, as: JSONValue.self, pollInterval: .milliseconds(20))
                #expect(output.jsonText == #"{"echoed":\#(input)}"#)
                // What the viewer and `edda show` print.
                let instance = try #require(try await app.instance(id))
                #expect(instance.inputData.jsonText == input)
                #expect(instance.outputData?["result"]?.jsonText == #"{"echoed":\#(input)}"#)
            }
        }
    }

    @Test("numbers convert exactly or not at all")
    func numberConversions() throws {
        let big = try #require(JSONNumber(jsonText: "9223372036854775807"))
        #expect(big.int64Value == .max)
        #expect(JSONNumber(jsonText: "9223372036854775808")?.int64Value == nil)
        #expect(JSONNumber(jsonText: "9223372036854775808")?.uint64Value == 9_223_372_036_854_775_808)
        #expect(JSONNumber(jsonText: "-9223372036854775808")?.int64Value == .min)
        #expect(JSONNumber(jsonText: "9007199254740993")?.int64Value == 9_007_199_254_740_993)
        #expect(JSONNumber(jsonText: "4.2e1")?.int64Value == 42)
        #expect(JSONNumber(jsonText: "4.5")?.int64Value == nil)
        #expect(JSONNumber(jsonText: "-1")?.uint64Value == nil)
        #expect(JSONNumber(jsonText: "1e400")?.doubleValue == .infinity)
        #expect(JSONNumber(jsonText: "1.5e-7")?.doubleValue == 1.5e-7)
        #expect(try JSONValue(parsing: "1e400").numberValue == .infinity)
        #expect(JSONNumber(jsonText: "01") == nil)
        #expect(JSONNumber(jsonText: " 1") == nil)
        #expect(JSONNumber(jsonText: "+1") == nil)
        #expect(JSONNumber(jsonText: "1.") == nil)
    }

    @Test("number equality is exact and numeric: notation does not matter, precision does")
    func numberEquality() throws {
        let one = ["1", "1.0", "10e-1", "1E0", "0.1e1", "100e-2"].compactMap { JSONNumber(jsonText: $0) }
        #expect(one.count == 6)
        #expect(Set(one).count == 1)
        #expect(JSONNumber(jsonText: "-0") == JSONNumber(jsonText: "0"))
        #expect(JSONNumber(jsonText: "9007199254740993") != JSONNumber(jsonText: "9007199254740992"))
        #expect(JSONNumber(jsonText: "1e400") != JSONNumber(jsonText: "1e401"))
        #expect(JSONNumber(jsonText: "-1") != JSONNumber(jsonText: "1"))
        #expect(try JSONValue(parsing: "3.0") == .number(3))
        #expect(try JSONValue(parsing: "[2.50]") == [2.5])
    }

    @Test("numbers made from Swift values are written as JSONEncoder writes them")
    func numbersFromSwift() throws {
        #expect(JSONValue.number(3.0).jsonText == "3")
        #expect(JSONValue.number(0.1).jsonText == "0.1")
        #expect(JSONValue.number(-0.0).jsonText == "-0")
        #expect(JSONValue.number(.nan) == .null)
        #expect(JSONValue.number(-.infinity) == .null)
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONValue.number(Int.min).jsonText == "-9223372036854775808")
        let values: [Double] = [1e21, 1.5e-7, 123.456, 1e16, 2.5, 4_503_599_627_370_497]
        let encoder = JSONEncoder()
        for value in values {
            let expected = String(decoding: try encoder.encode([value]), as: UTF8.self)
            #expect(JSONValue.array([.number(value)]).jsonText == expected)
        }
    }

    // MARK: Strings

    @Test("escapes and surrogate pairs decode")
    func escapes() throws {
        let text = #""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000""#
        #expect(try JSONValue(parsing: text) == .string("\"\\/\u{8}\u{C}\n\r\t\u{41}é€😀\u{0}"))
        #expect(try JSONValue(parsing: #"{"k\u00e9y":"v"}"#)["kéy"] == "v")
        #expect(try JSONValue(parsing: "\"plain é 😀\"") == "plain é 😀")
    }

    @Test("strings are written with the escapes JSONEncoder uses")
    func stringsWritten() throws {
        let samples = ["", "plain", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}", "é€😀", "a\u{2028}b"]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for sample in samples {
            let value = JSONValue.object([sample: .string(sample), "z": .array([.string(sample)])])
            let expected = String(decoding: try encoder.encode(value), as: UTF8.self)
            #expect(value.jsonText == expected)
            #expect(try JSONValue(parsing: value.jsonText) == value)
        }
    }

    @Test("object members are written sorted by UTF-8, as JSONEncoder's sortedKeys")
    func sortedMembers() throws {
        let value: JSONValue = ["b": 1, "a": ["é": true, "e": false, "Z": nil], "10": "x", "9": [], "": [:]]
        #expect(value.jsonText == #"{"":{},"10":"x","9":[],"a":{"Z":null,"e":false,"é":true},"b":1}"#)
    }

    // MARK: Invalid input

    @Test("invalid JSON is rejected", arguments: [
        "", " ", "[1,]", #"{"a":1,}"#, "01", "-01", "[00]", "1.", ".5", "1e", "1e+", "+1", "-", "--1", "[1 2]", "1 2",
        "tru", "nul", "falsey", "NaN", "Infinity", "[", "]", "[1", #"{"a"}"#, "{a:1}", #"{"a":1"#, #"{"a" 1}"#,
        #"{1:2}"#, #"["a" "b"]"#, "\"abc", #""\""#, #""\x""#, #""\u12""#, #""\u12G4""#, "\"a\u{1}b\"", "\"tab\there\"",
        #""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\ud800x""#, #""\ude00\ud83d""#, "[1]]", "{}}", "'a'",
    ])
    func invalidJSON(_ text: String) {
        #expect(throws: InvalidJSONError.self) { try JSONValue(parsing: text) }
        #expect(JSONValue(jsonText: text) == nil)
    }

    @Test("invalid UTF-8 is rejected", arguments: [
        [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xC0, 0x80, 0x22],
        [0x22, 0x5C, 0x6E, 0xF0, 0x9F, 0x22], [0x7B, 0x22, 0xFE, 0x22, 0x3A, 0x31, 0x7D], [0x5B, 0xFF, 0x5D],
    ] as [[UInt8]])
    func invalidUTF8(_ bytes: [UInt8]) {
        #expect(throws: InvalidJSONError.self) { try JSONValue(parsing: bytes) }
    }

    @Test("valid JSON of every shape parses, from text and from bytes")
    func validJSON() throws {
        let text = "\u{FEFF} \n\t{\"a\": [1, -2.5e3, true, false, null, \"s\", {}, []], \"b\": {\"c\": \"d\"}} \r\n"
        let expected: JSONValue = ["a": [1, -2500, true, false, nil, "s", [:], []], "b": ["c": "d"]]
        #expect(try JSONValue(parsing: text) == expected)
        #expect(try JSONValue(parsing: Data(text.utf8)) == expected)
        #expect(try JSONValue(parsing: Array(text.utf8)[...]) == expected)
        #expect(try JSONValue(parsing: " null ") == .null)
        #expect(try JSONValue(parsing: #""""#) == "")
        // The first of repeated names wins, as with JSONDecoder.
        #expect(try JSONValue(parsing: #"{"a":1,"a":2}"#) == ["a": 1])
    }

    // MARK: Codable

    struct Envelope: Codable, Equatable {
        var value: JSONValue
        var list: [JSONValue]
        var missing: JSONValue?
    }

    @Test("JSONValue inside a Codable type decodes and encodes every shape", arguments: [
        "null", "true", "false", "12", "-0.5", "9007199254740993", "-9223372036854775808", "18446744073709551615",
        "1.5e-07", #""text""#, #"[1,"a",null,[true]]"#, #"{"k":{"n":[true,{"x":null}]},"order_id":"o"}"#, "{}", "[]",
    ])
    func embedded(_ text: String) throws {
        let json = #"{"value":\#(text),"list":[\#(text)]}"#
        let envelope = try JSONDecoder().decode(Envelope.self, from: Data(json.utf8))
        let parsed = try JSONValue(parsing: text)
        #expect(envelope == Envelope(value: parsed, list: [parsed], missing: nil))
        // Keys inside a JSONValue stay as written, whatever the key strategy.
        let snake = JSONDecoder()
        snake.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try snake.decode(Envelope.self, from: Data(json.utf8)).value == parsed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(String(decoding: try encoder.encode(envelope), as: UTF8.self) == #"{"list":[\#(parsed.jsonText)],"value":\#(parsed.jsonText)}"#)
    }

    @Test("a number an Encoder cannot carry is an error, not a silent change")
    func encoderLimits() throws {
        let huge = JSONValue.number(JSONNumber(jsonText: "1e400") ?? 0)
        #expect(throws: EncodingError.self) { try JSONEncoder().encode([huge]) }
        #expect(huge.jsonText == "1e400")
    }

    @Test("a member is removed from an object's text, the rest kept as written", arguments: [
        (#"{"_trace_context":{"traceparent":"x"},"n":1.50}"#, #"{"n":1.50}"#),
        (#"{"n": 1.50, "_trace_context": {"a": "}"}}"#, #"{"n": 1.50}"#),
        (#"{ "a": [1, {"b": 2}], "_trace_context": {}, "c": "d" }"#, #"{ "a": [1, {"b": 2}], "c": "d" }"#),
        (#"{"_trace_context":{}}"#, "{}"),
    ])
    func removingMember(_ text: String, _ expected: String) {
        #expect(RawJSON.removingMember("_trace_context", from: text) == expected)
        #expect(TraceCarrier.removed(from: text) == expected)
    }

    @Test("removing a member that is not there, or from what is not an object, gives nil")
    func removingNothing() {
        #expect(RawJSON.removingMember("_trace_context", from: #"{"a":1}"#) == nil)
        #expect(RawJSON.removingMember("_trace_context", from: #"["_trace_context"]"#) == nil)
        #expect(RawJSON.removingMember("_trace_context", from: #"{"a":"_trace_context"}"#) == nil)
        #expect(TraceCarrier.removed(from: #"{"a":"\"_trace_context\""}"#) == #"{"a":"\"_trace_context\""}"#)
    }

    @Test("a trace carrier is added to an object once, first, and read back")
    func carrierAdded() {
        let carrier = TraceCarrier(fields: ["traceparent": "00-a-b-01"])
        #expect(carrier.added(toObject: #"{"n":1}"#) == #"{"_trace_context":{"traceparent":"00-a-b-01"},"n":1}"#)
        #expect(carrier.added(toObject: "{ }") == #"{"_trace_context":{"traceparent":"00-a-b-01"}}"#)
        #expect(carrier.added(toObject: "[1]") == "[1]")
        let once = carrier.added(toObject: "{}")
        #expect(TraceCarrier(fields: ["traceparent": "other"]).added(toObject: once) == once)
        #expect(TraceCarrier(inObject: once) == carrier)
        #expect(TraceCarrier(metadata: ["ce_extensions": ["traceparent": "00-c-d-01", "tenant": "x"]])?.fields == ["traceparent": "00-c-d-01"])
    }
}
