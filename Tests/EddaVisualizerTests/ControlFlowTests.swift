import EddaDiagram
import EddaVisualizer
import Testing

/// Branches and loops around durable steps.
@Suite("Control flow")
struct ControlFlowTests {
    @Test("if/else: a condition branch with Yes and No arms")
    func ifElse() throws {
        let steps = try stepsOf("""
            if input > 10 {
                _ = try await context.run(StepA(), input: input)
            } else {
                _ = try await context.run(StepB(), input: input)
            }
            return try await context.run(StepC(), input: input)
            """)
        #expect(steps == [
            branch(.condition, "input > 10", arm("Yes", activity("step_a")), arm("No", activity("step_b"))),
            activity("step_c"),
        ])
    }

    @Test("if without else: an empty No arm")
    func ifWithoutElse() throws {
        let steps = try stepsOf("""
            if input.isMultiple(of: 2) { _ = try await context.run(StepA(), input: input) }
            return 0
            """)
        #expect(steps == [branch(.condition, "input.isMultiple(of: 2)", arm("Yes", activity("step_a")), arm("No"))])
    }

    @Test("else-if chain: one multi-arm branch, arms labelled with their conditions, then else")
    func elseIfChain() throws {
        let steps = try stepsOf("""
            if input > 100 {
                _ = try await context.run(StepA(), input: input)
            } else if input > 10 {
                _ = try await context.run(StepB(), input: input)
            } else if input < 0 {
                print("negative")
            } else {
                _ = try await context.run(StepC(), input: input)
            }
            return 0
            """)
        #expect(steps == [
            branch(
                .condition, "if",
                arm("input > 100", activity("step_a")),
                arm("input > 10", activity("step_b")),
                arm("input < 0"),
                arm("else", activity("step_c"))),
        ])
    }

    @Test("else-if chain without a final else: an empty else arm for the fall-through")
    func elseIfWithoutElse() throws {
        let steps = try stepsOf("""
            if input == 1 {
                _ = try await context.run(StepA(), input: input)
            } else if input == 2 {
                _ = try await context.run(StepB(), input: input)
            }
            return 0
            """)
        #expect(steps == [
            branch(
                .condition, "if", arm("input == 1", activity("step_a")), arm("input == 2", activity("step_b")),
                arm("else")),
        ])
    }

    @Test("if let / if case conditions are labelled with their text")
    func ifLetAndIfCase() throws {
        let steps = try stepsOf("""
            let maybe: Int? = input
            if let value = maybe, value > 1 { _ = try await context.run(StepA(), input: value) }
            if case .some(let value) = maybe { _ = try await context.run(StepB(), input: value) }
            return 0
            """)
        #expect(steps == [
            branch(.condition, "let value = maybe, value > 1", arm("Yes", activity("step_a")), arm("No")),
            branch(.condition, "case .some(let value) = maybe", arm("Yes", activity("step_b")), arm("No")),
        ])
    }

    @Test("A durable call in a condition comes before the branch; in an else-if it stays nested")
    func durableConditions() throws {
        let steps = try stepsOf("""
            if try await context.run(StepA(), input: input) > 0 {
                _ = try await context.run(StepB(), input: input)
            } else if try await context.run(StepC(), input: input) > 0 {
                try await context.sleep(for: .seconds(1))
            }
            return 0
            """)
        #expect(steps == [
            activity("step_a"),
            branch(
                .condition, "try await context.run(StepA(), input: input) > 0",
                arm("Yes", activity("step_b")),
                arm(
                    "No", activity("step_c"),
                    branch(
                        .condition, "try await context.run(StepC(), input: input) > 0",
                        arm("Yes", node(.timer, "sleep(for: .seconds(1))", "sleep")), arm("No")))),
        ])
    }

    @Test("guard: an empty Yes arm (the flow continues after it) and the else body as No")
    func guardStatement() throws {
        let steps = try stepsOf("""
            guard input > 0 else {
                try context.registerCompensation(Refund(), input: input)
                return try await context.run(StepA(), input: 0)
            }
            return try await context.run(StepB(), input: input)
            """)
        #expect(steps == [
            branch(
                .condition, "input > 0", arm("Yes"),
                arm(
                    "No", node(.compensation, "register compensation: refund_payment", "refund_payment"),
                    activity("step_a"))),
            activity("step_b"),
        ])
    }

    @Test("switch: one arm per case, patterns and where clauses in the label, default")
    func switchStatement() throws {
        let steps = try stepsOf("""
            switch input % 4 {
            case 0, 1:
                _ = try await context.run(StepA(), input: input)
            case let n where n > 2:
                _ = try await context.run(StepB(), input: n)
            case 2:
                break
            default:
                try await context.sleep(for: .seconds(5))
            }
            return 0
            """)
        #expect(steps == [
            branch(
                .switch, "input % 4",
                arm("case 0, 1", activity("step_a")),
                arm("case let n where n > 2", activity("step_b")),
                arm("case 2"),
                arm("default", node(.timer, "sleep(for: .seconds(5))", "sleep"))),
        ])
    }

    @Test("for, while and repeat: loops labelled with their headers")
    func loops() throws {
        let steps = try stepsOf("""
            for item in [1, 2, 3] where item != input {
                _ = try await context.run(StepA(), input: item)
            }
            var count = 0
            while count < input {
                count += try await context.run(StepB(), input: count)
            }
            repeat {
                count -= try await context.run(StepC(), input: count)
            } while count > 0
            return count
            """)
        #expect(steps == [
            loop("for item in [1, 2, 3] where item != input", activity("step_a")),
            loop("while count < input", activity("step_b")),
            loop("repeat … while count > 0", activity("step_c")),
        ])
    }

    @Test("do/catch: a do arm and error-path arms for typed and untyped catch clauses")
    func doCatch() throws {
        let steps = try stepsOf("""
            do {
                _ = try await context.run(Reserve(), input: input)
            } catch let error as TerminalError where error.message.isEmpty {
                _ = try await context.run(StepA(), input: input)
            } catch is CancellationError {
                print("cancelled")
            } catch {
                try await context.publish("failures", data: input)
            }
            return 0
            """)
        #expect(steps == [
            branch(
                .tryCatch, "do",
                arm("do", activity("reserve", compensates: true)),
                arm("catch let error as TerminalError where error.message.isEmpty", activity("step_a"), error: true),
                arm("catch is CancellationError", error: true),
                arm("catch", node(.publish, "publish: failures", "publish"), error: true)),
        ])
    }

    @Test("do without catch is a plain scope")
    func doWithoutCatch() throws {
        let steps = try stepsOf("""
            do {
                _ = try await context.run(StepA(), input: input)
            }
            return 0
            """)
        #expect(steps == [activity("step_a")])
    }

    @Test("Nested structures: a loop holding a switch holding a do/catch holding an if")
    func nested() throws {
        let steps = try stepsOf("""
            for round in 0..<input {
                switch round {
                case 0:
                    do {
                        if round == input {
                            _ = try await context.run(StepA(), input: round)
                        }
                    } catch {
                        _ = try await context.run(StepB(), input: round)
                    }
                default:
                    let event = try await context.waitEvent("tick", as: Int.self, timeout: .seconds(30))
                    print(event)
                }
            }
            return 0
            """)
        #expect(steps == [
            loop(
                "for round in 0..<input",
                branch(
                    .switch, "round",
                    arm(
                        "case 0",
                        branch(
                            .tryCatch, "do",
                            arm("do", branch(.condition, "round == input", arm("Yes", activity("step_a")), arm("No"))),
                            arm("catch", activity("step_b"), error: true))),
                    arm("default", node(.waitEvent, "wait event: tick (timeout: .seconds(30))", "receive_tick")))),
        ])
    }

    @Test("Branches and loops without durable steps are left out; their durable neighbours stay")
    func emptyStructuresDropped() throws {
        let steps = try stepsOf("""
            var total = 0
            if input > 3 { total += 1 } else { total -= 1 }
            guard total != 7 else { return 0 }
            for index in 0..<3 { total += index }
            while total > 100 { total /= 2 }
            switch total { case 0: print("zero"); default: break }
            do { try check(total) } catch { print(error) }
            _ = try await context.run(StepA(), input: total)
            return total
            """)
        #expect(steps == [activity("step_a")])
    }

    @Test("The sequence of a for loop runs once, before the loop")
    func forSequence() throws {
        let steps = try stepsOf("""
            for id in try await context.run(StepA(), input: 1) ..< 9 {
                _ = try await context.run(StepB(), input: id)
            }
            return 0
            """)
        #expect(steps == [
            activity("step_a"),
            loop("for id in try await context.run(StepA(), input: 1) ..< 9", activity("step_b")),
        ])
    }

    @Test("defer bodies come at the end of their block, the last declared first")
    func deferAtEnd() throws {
        let steps = try stepsOf("""
            defer { Task { } }
            try await context.subscribe("news")
            defer { print("done") }
            _ = try await context.run(StepA(), input: input)
            return 0
            """)
        #expect(steps == [node(.subscription, "subscribe: news", nil), activity("step_a")])
        let withDurableDefer = try stepsOf("""
            do {
                defer { _ = context.start(StepC(), input: 0) }
                defer { _ = context.start(StepB(), input: 0) }
                _ = try await context.run(StepA(), input: input)
            }
            return 0
            """)
        #expect(withDurableDefer == [activity("step_a"), activity("step_b"), activity("step_c")])
    }

    @Test("A labelled loop and an if used as an expression")
    func labelledLoopAndIfExpression() throws {
        let steps = try stepsOf("""
            outer: for row in 0..<input {
                let value = if row > 2 { try await context.run(StepA(), input: row) } else { 0 }
                if value == 0 { continue outer }
            }
            return 0
            """)
        #expect(steps == [
            loop("for row in 0..<input", branch(.condition, "row > 2", arm("Yes", activity("step_a")), arm("No"))),
        ])
    }
    @Test("#if blocks become a condition branch per clause; @unknown default is an arm")
    func compilerConditionsAndUnknownDefault() throws {
        let steps = try stepsOf("""
            #if DEBUG
            try await context.sleep(for: .seconds(1))
            #elseif os(Linux)
            print("linux")
            #else
            _ = try await context.run(StepA(), input: input)
            #endif
            switch mode {
            case .fast: _ = try await context.run(StepB(), input: input)
            @unknown default: _ = try await context.run(StepC(), input: input)
            }
            return 0
            """)
        #expect(steps == [
            branch(
                .condition, "#if",
                arm("#if DEBUG", node(.timer, "sleep(for: .seconds(1))", "sleep")),
                arm("#elseif os(Linux)"),
                arm("#else", activity("step_a"))),
            branch(.switch, "mode", arm("case .fast", activity("step_b")), arm("@unknown default", activity("step_c"))),
        ])
    }
}
