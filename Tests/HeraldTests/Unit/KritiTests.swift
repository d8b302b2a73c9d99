import Testing

@testable import Herald

private func evaluate(_ template: String, _ variables: [String: KritiValue] = [:]) throws -> KritiValue {
    try KritiTemplate(template).evaluate(variables)
}

private func failure(_ template: String, _ variables: [String: KritiValue] = [:]) -> KritiError? {
    do {
        _ = try KritiTemplate(template).evaluate(variables)
        return nil
    } catch {
        return error
    }
}

private let order: KritiValue = [
    "id": 42, "status": "paid", "total": 12.5, "customer": ["name": "Ada", "email": "ada@example.com"],
    "items": [["sku": "a-1", "qty": 2], ["sku": "b-2", "qty": 1]], "note": nil,
]

@Suite("Kriti language")
struct KritiLanguageTests {
    @Test func interpolatesValuesIntoStringsAsKritiRendersThem() throws {
        let result = try evaluate(
            #""{{$body.id}}/{{$body.status}}/{{$body.total}}/{{true}}/{{$body.note}}/{{$body.customer}}/{{$body.items[0]}}""#,
            ["$body": order])
        #expect(result == .string(#"42/paid/12.5/true/null/{"name":"Ada","email":"ada@example.com"}/{"sku":"a-1","qty":2}"#))
    }

    @Test func buildsAHasuraStyleURLAndBody() throws {
        let url = try evaluate(#""{{$base_url}}/orders/{{$body.id}}?by={{ escapeUri $body.customer.email }}""#, [
            "$body": order, "$base_url": "https://api.example.com",
        ])
        #expect(url == "https://api.example.com/orders/42?by=ada%40example.com")
        let body = try evaluate(
            #"{"text": "Order {{$body.id}} is {{$body.status}}", "count": {{ size($body.items) }}}"#, ["$body": order])
        #expect(body.jsonText == #"{"text":"Order 42 is paid","count":2}"#)
    }

    @Test func readsPathsByDotBracketAndIndex() throws {
        #expect(try evaluate("{{ $body.customer.name }}", ["$body": order]) == "Ada")
        #expect(try evaluate("{{ $body['customer']['email'] }}", ["$body": order]) == "ada@example.com")
        #expect(try evaluate("{{ $body.items[1].sku }}", ["$body": order]) == "b-2")
        #expect(try evaluate("{{ $body.items[$body.items[1].qty].qty }}", ["$body": order]) == 1)
        #expect(try evaluate("{{ $body.x-hasura-role }}", ["$body": ["x-hasura-role": "admin"]]) == "admin")
        #expect(try evaluate("{{ $body['cust{{ $part }}'].name }}", ["$body": order, "$part": "omer"]) == "Ada")
    }

    @Test func optionalChainingGivesNullForAnythingMissing() throws {
        let variables: [String: KritiValue] = ["$body": order]
        #expect(try evaluate("{{ $body?.missing.deeper.still }}", variables) == .null)
        #expect(try evaluate("{{ $body.items?[5].sku }}", variables) == .null)
        #expect(try evaluate("{{ $body.items?.[0].sku }}", variables) == "a-1")
        #expect(try evaluate("{{ $body?['customer'].name }}", variables) == "Ada")
        // The base of a chain may fail too: kriti-lang catches that and yields null.
        #expect(try evaluate("{{ $body.missing?.x }}", variables) == .null)
        #expect(try evaluate("{{ $unbound?.x }}", variables) == .null)
        let error = failure(#"{{ "text"?.x }}"#)
        #expect(error?.code == .typeError)
        #expect(error?.message == "Couldn't match expected type 'Object' with actual type 'String'")
    }

    @Test func defaultingReplacesOnlyNull() throws {
        #expect(try evaluate("{{ null ?? 1 }}") == 1)
        #expect(try evaluate("{{ false ?? 1 }}") == false)
        #expect(try evaluate("{{ $body?.nope ?? $body?.note ?? \"none\" }}", ["$body": order]) == "none")
        #expect(failure("{{ $body.nope ?? 1 }}", ["$body": order])?.code == .attributeError)
    }

    @Test func operatorsFollowKritisPrecedence() throws {
        #expect(try evaluate("true || false && false") == true)
        #expect(try evaluate("(true || false) && false") == false)
        #expect(try evaluate("1 < 2 && 3 >= 3") == true)
        #expect(try evaluate("not 1 == 2") == true)
        #expect(try evaluate("not false && false") == true)
        #expect(try evaluate("size [1, 2] > 1") == true)
        #expect(try evaluate(#""a" in ["a", "b"] && "z" in {"z": 0}"#) == true)
        #expect(try evaluate("$x?.y ?? 1 == 1", ["$x": [:]]) == true)
        #expect(try evaluate("1 == 1 ? \"yes\" : \"no\"") == "yes")
        let chained = #expect(throws: KritiError.self) { try KritiTemplate("1 < 2 < 3") }
        #expect(chained?.isParseError == true)
    }

    @Test func comparesAsAesonOrdersValues() throws {
        #expect(try evaluate(#""apple" < "banana""#) == true)
        #expect(try evaluate("[1, 2] < [1, 3]") == true)
        // Across types aeson orders by constructor: Object < Array < String < Number < Bool < Null.
        #expect(try evaluate(#"1 > "a""#) == true)
        #expect(try evaluate("1.0 == 1") == true)
        #expect(try evaluate(#"{"a": 1, "b": 2} == {"b": 2, "a": 1}"#) == true)
    }

    @Test func andOrEvaluateBothSidesAndWantBooleans() {
        #expect(failure("false && $missing")?.code == .nameError)
        let error = failure("true && 1")
        #expect(error?.code == .typeError)
        #expect(error?.message == "Couldn't match expected type 'Boolean' with actual type 'Number'")
    }

    @Test func ifElifElsePicksTheFirstTrueBranch() throws {
        let template = try KritiTemplate(
            #"{{ if $body.qty > 10 }} "bulk" {{ elif $body.qty > 1 }} "some" {{ elif $body.qty == 1 }} "one" {{ else }} "none" {{ end }}"#
        )
        #expect(try template.evaluate(["$body": ["qty": 20]]) == "bulk")
        #expect(try template.evaluate(["$body": ["qty": 3]]) == "some")
        #expect(try template.evaluate(["$body": ["qty": 1]]) == "one")
        #expect(try template.evaluate(["$body": ["qty": 0]]) == "none")
        #expect(failure(#"{{ if "yes" }} 1 {{ else }} 2 {{ end }}"#)?.code == .typeError)
    }

    @Test func rangeBindsIndexAndElement() throws {
        let result = try evaluate(
            #"{{ range i, item := $body.items }} {"n": {{i}}, "sku": "{{item.sku}}-{{i}}"} {{ end }}"#, ["$body": order])
        #expect(result.jsonText == #"[{"n":0,"sku":"a-1-0"},{"n":1,"sku":"b-2-1"}]"#)
        let ignored = try evaluate("{{ range _, x := [1, 2, 3] }} {{ x }} {{ end }}")
        #expect(ignored == [1, 2, 3])
        let nested = try evaluate("{{ range i, x := [[1], [2, 3]] }} {{ range i, y := x }} {{ i }} {{ end }} {{ end }}")
        #expect(nested == [[0], [0, 1]])
        let error = failure("{{ range i, x := $body.id }} 1 {{ end }}", ["$body": order])
        #expect(error?.message == "Couldn't match expected type 'Array' with actual type 'Number'")
    }

    @Test func bindersAreScopedToTheirRange() {
        #expect(failure("[{{ range _, x := [1] }} x {{ end }}, {{ x }}]")?.code == .nameError)
    }

    @Test func commentsAndWhitespaceAreIgnored() throws {
        #expect(try evaluate("# a comment\n{\n  \"a\": 1 # another\n}") == ["a": 1])
    }

    @Test func jsonStringsKeepTheirEscapes() throws {
        let result = try evaluate(#"{"q": "say \"hi\"\n\u00e9\ud83d\ude00 {{ $x }}"}"#, ["$x": "end"])
        #expect(result == ["q": "say \"hi\"\né😀 end"])
        #expect(result.jsonText == #"{"q":"say \"hi\"\né😀 end"}"#)
    }

    @Test func objectsKeepTheirKeyOrder() throws {
        let result = try evaluate(#"{"z": 1, "a": {{ $x }}, "m": [3, {"y": 1, "b": 2}]}"#, ["$x": 2])
        #expect(result.jsonText == #"{"z":1,"a":2,"m":[3,{"y":1,"b":2}]}"#)
    }

    @Test func unescapedTemplatesReadAsTheInsideOfAString() throws {
        let url = try KritiTemplate(unescaped: "{{$base_url}}/orders/{{$body.id}}?note={\\d}")
        #expect(try url.evaluate(["$base_url": "https://x.test", "$body": order]) == "https://x.test/orders/42?note={\\d}")
        let error = #expect(throws: KritiError.self) { try KritiTemplate(unescaped: "a{{ $x. }}") }
        #expect(error?.column == 7)
        let missing = try KritiTemplate(unescaped: "id={{ $body.nope }}")
        #expect(throws: KritiError.self) { try missing.evaluate(["$body": order]) }
        do {
            _ = try missing.evaluate(["$body": order])
        } catch {
            #expect(error.column == 7)
        }
    }

    @Test func oneCompiledTemplateServesManyEvents() throws {
        let template = try KritiTemplate(#"{"id": {{$body.id}}}"#)
        for id in 0..<100 {
            #expect(try template.evaluate(["$body": ["id": .number(id)]]) == ["id": .number(id)])
        }
    }
}

@Suite("Kriti functions")
struct KritiFunctionTests {
    @Test func empty() throws {
        #expect(try evaluate(#"[empty({}), empty([]), empty("  "), empty(0), empty(null), empty([0]), empty("a")]"#)
            == [true, true, true, true, true, false, false])
        #expect(failure("empty(true)")?.message == "Cannot define emptiness for a boolean")
    }

    @Test func size() throws {
        #expect(try evaluate(#"[size({"a": 1}), size([1, 2]), size("héllo"), size(7), size(true), size(false), size(null)]"#)
            == [1, 2, 5, 7, 1, 0, 0])
    }

    @Test func inverse() throws {
        #expect(try evaluate(#"[inverse("abc"), inverse([1, 2]), inverse(4), inverse(true), inverse(null), inverse({"a": 1})]"#)
            == ["cba", [2, 1], 0.25, false, nil, ["a": 1]])
    }

    @Test func headAndTail() throws {
        #expect(try evaluate(#"[head("abc"), head([1, 2]), tail("abc"), tail([1, 2])]"#) == ["a", 1, "bc", [2]])
        #expect(failure("head([])")?.message == "Empty array")
        #expect(failure(#"head("")"#)?.message == "Empty string")
        #expect(failure("head(1)")?.message == "Expected an array or string")
        #expect(failure("tail({})")?.message == "Expected an array or string")
    }

    @Test func caseFunctions() throws {
        #expect(try evaluate(#"toLower("ÀbC")"#) == "àbc")
        #expect(try evaluate(#"toUpper("straße")"#) == "STRASSE")
        #expect(try evaluate(#"toCaseFold("Straße")"#) == "strasse")
        #expect(try evaluate(#"toTitle("hELLO wORLD, o'neil")"#) == "Hello World, O'Neil")
        #expect(failure("toLower(1)")?.message == "parsing String failed, expected String, but encountered Number")
    }

    @Test func escapeUri() throws {
        #expect(try evaluate(#"escapeUri("a b/c?d=é&x~_.-")"#) == "a%20b%2Fc%3Fd%3D%C3%A9%26x~_.-")
    }

    @Test func pairs() throws {
        #expect(try evaluate(#"toPairs({"b": 1, "a": 2})"#) == [["b", 1], ["a", 2]])
        #expect(try evaluate(#"fromPairs([["b", 1], ["a", 2], ["b", 3]])"#).jsonText == #"{"b":3,"a":2}"#)
        #expect(failure("fromPairs([[1, 2]])")?.message == "parsing Key failed, expected String, but encountered Number")
        #expect(failure("fromPairs([[1]])")?.message
            == "Expected an array of shape [ [k1,v1], [k2,v2] ... ] - With String keys.")
        #expect(failure("fromPairs({})")?.message == "parsing Nested Arrays failed, expected Array, but encountered Object")
        #expect(failure("toPairs([])")?.message == "parsing Object failed, expected Object, but encountered Array")
    }

    @Test func removeNullsAndConcat() throws {
        #expect(try evaluate("removeNulls([null, 1, null])") == [1])
        #expect(try evaluate("concat([])") == [])
        #expect(try evaluate(#"concat([{"a": 1, "b": 2}, {"b": 3, "c": 4}])"#).jsonText == #"{"a":1,"b":3,"c":4}"#)
        #expect(failure(#"concat([[1], "a"])"#)?.message
            == "parsing Nested Object failed, expected Object, but encountered Array")
        #expect(failure("removeNulls(1)")?.message == "parsing Array failed, expected Array, but encountered Number")
    }

    @Test func not() throws {
        #expect(try evaluate("not false") == true)
        #expect(failure("not 1")?.message == "parsing Bool failed, expected Boolean, but encountered Number")
    }

    @Test func getSessionVariableIgnoresCase() throws {
        let variables: [String: KritiValue] = ["$session_variables": ["x-hasura-user-id": "7", "X-Hasura-Role": "user"]]
        #expect(try evaluate(#"getSessionVariable("X-Hasura-User-Id")"#, variables) == "7")
        #expect(try evaluate(#""{{ getSessionVariable("x-hasura-role") }}""#, variables) == "user")
        #expect(failure(#"getSessionVariable("x-hasura-org")"#, variables)?.message
            == #"Session variable "x-hasura-org" not found"#)
        #expect(failure("getSessionVariable(1)", variables)?.message == "Session variable name should be a string")
        #expect(try evaluate("getSessionVariable(null)", variables) == .null)
    }

    @Test func unknownFunctionIsANameError() {
        let error = failure("shout(1)")
        #expect(error?.code == .nameError)
        #expect(error?.message == "Variable 'shout' not in scope")
        #expect(error?.range == KritiError.SourceRange(start: .init(line: 1, column: 1), end: .init(line: 1, column: 9)))
    }
}

@Suite("Kriti errors")
struct KritiErrorTests {
    @Test func evaluationErrorsPointAtTheFailingExpression() throws {
        let template = try KritiTemplate("{\n  \"a\": {{ $body.customer.phone }}\n}")
        do {
            _ = try template.evaluate(["$body": order])
            Issue.record("evaluated")
        } catch {
            #expect(error.code == .attributeError)
            #expect(error.message == "'Object' has no attribute 'phone'")
            #expect(!error.isParseError)
            #expect(error.line == 2 && error.column == 11)
            #expect(error.range.end == KritiError.SourceLocation(line: 2, column: 31))
        }
        let unbound = failure("[1,\n {{ $bdy.id }}]")
        #expect(unbound?.message == "Variable '$bdy' not in scope")
        #expect(unbound?.line == 2 && unbound?.column == 5)
    }

    @Test func indexErrors() {
        let error = failure("{{ $body.items[7] }}", ["$body": order])
        #expect(error?.code == .indexError)
        #expect(error?.message == "Index out of range")
        #expect(failure(#"{{ $body.items["x"] }}"#, ["$body": order])?.code == .typeError)
    }

    @Test func functionErrorsPointAtTheArgument() {
        let error = failure("{{ head( [] ) }}")
        #expect(error?.code == .functionError)
        #expect(error?.column == 10)
    }

    @Test func parseErrorsCarryLineAndColumn() {
        let error = #expect(throws: KritiError.self) { try KritiTemplate("{\n  \"a\": {{ $x. }}\n}") }
        #expect(error?.code == .parseError)
        #expect(error?.line == 2 && error?.column == 13)
        #expect(error?.message == "Unexpected token '.'.")
        let unclosed = #expect(throws: KritiError.self) { try KritiTemplate(#"{"a": "{{ $x "}"#) }
        #expect(unclosed?.isParseError == true)
        let missingEnd = #expect(throws: KritiError.self) { try KritiTemplate("{{ if true }} 1 {{ else }} 2") }
        #expect(missingEnd?.message == "Unexpected end of input.")
    }

    @Test func deepNestingIsRefusedRatherThanOverflowingTheStack() throws {
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(try evaluate(fine).jsonText == fine)
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        let error = #expect(throws: KritiError.self) { try KritiTemplate(deep) }
        #expect(error?.message == "Template nested too deeply.")
        #expect(throws: KritiError.self) { try KritiValue(json: deep) }
    }

    @Test func aStrayCharacterIsALexError() {
        let error = #expect(throws: KritiError.self) { try KritiTemplate("{{ $x @ 1 }}") }
        #expect(error?.code == .lexError)
        #expect(error?.column == 7)
    }

    @Test func serializesAsKritiDoes() throws {
        let error = try #require(failure("\n  {{ $nope }}"))
        #expect(error.serialized.jsonText
            == #"{"error_code":"Name Error","message":"Variable '$nope' not in scope","source_position":{"start_line":1,"start_column":6,"end_line":1,"end_column":11}}"#)
    }
}

@Suite("Kriti JSON values")
struct KritiValueTests {
    @Test func parsesAndRendersJSONKeepingKeyOrder() throws {
        let text = #"{"b":[1,-2.5,1e3,true,false,null],"a":{"z":"\u0041\t","y":{}},"c":[]}"#
        let value = try KritiValue(json: text)
        #expect(value.jsonText == #"{"b":[1,-2.5,1000,true,false,null],"a":{"z":"A\t","y":{}},"c":[]}"#)
        #expect(try KritiValue(json: Array(text.utf8)) == value)
    }

    @Test func keepsLargeIntegersAndDecimalLiterals() throws {
        let value = try KritiValue(json: #"[9007199254740993, 12.50, -0.000001]"#)
        #expect(value.jsonText == "[9007199254740993,12.50,-0.000001]")
    }

    @Test func rejectsMalformedJSON() {
        for text in ["", "{", "[1,]", #"{"a" 1}"#, "tru", "01", #""\x""#, "[1] 2"] {
            let error = #expect(throws: KritiError.self, "\(text)") { try KritiValue(json: text) }
            #expect(error?.code == .invalidJSON)
        }
    }

    @Test func escapesControlCharactersAsAesonDoes() {
        #expect(KritiValue.string("a\u{01}\"\\\r").jsonText == #""a\u0001\"\\\r""#)
    }
}
