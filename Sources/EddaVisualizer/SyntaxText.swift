import SwiftParser
import SwiftSyntax

/// Source text for labels, literal values and type names.
enum SyntaxText {
    /// The longest label, in characters; longer text is cut and ends in `...`.
    static let maxLabelLength = 60

    /// The node's source text, comments removed, whitespace collapsed to single spaces.
    ///
    /// - Parameter stop: A token at which to stop (exclusive), such as the `{` of a loop body.
    static func flat(_ node: some SyntaxProtocol, stoppingAt stop: TokenSyntax? = nil) -> String {
        var text = ""
        var spaceBefore = false
        for token in node.tokens(viewMode: .sourceAccurate) {
            if let stop, token.id == stop.id { break }
            if !text.isEmpty, spaceBefore || !token.leadingTrivia.isEmpty { text += " " }
            text += token.text
            spaceBefore = !token.trailingTrivia.isEmpty
        }
        return collapse(text)
    }

    /// `text` trimmed, with runs of whitespace collapsed to one space.
    static func collapse(_ text: String) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// A label: `text` collapsed and cut to ``maxLabelLength`` characters.
    static func label(_ text: String) -> String {
        let collapsed = collapse(text)
        guard collapsed.count > maxLabelLength else { return collapsed }
        return String(collapsed.prefix(maxLabelLength - 3)) + "..."
    }

    /// The value of a string literal without interpolation, looking through parentheses.
    static func literal(_ expression: ExprSyntax) -> String? {
        if let tuple = expression.as(TupleExprSyntax.self), tuple.elements.count == 1, let only = tuple.elements.first,
            only.label == nil
        {
            return literal(only.expression)
        }
        return expression.as(StringLiteralExprSyntax.self)?.representedLiteralValue
    }

    /// A string literal's value, or the expression's source text.
    static func literalOrText(_ expression: ExprSyntax) -> String {
        literal(expression) ?? flat(expression)
    }

    /// For a step ID given as a string literal: the part before its last `:`, when that part is
    /// plain text (`"charge:\(i)"` gives `charge`). `nil` when the ID has no `:` or its prefix
    /// is not known statically.
    static func stepNamePrefix(ofID expression: ExprSyntax) -> String? {
        if let value = literal(expression) {
            guard let colon = value.lastIndex(of: ":") else { return nil }
            return String(value[..<colon])
        }
        guard let string = expression.as(StringLiteralExprSyntax.self) else { return nil }
        var prefix: String?
        var plain = ""
        var interpolated = false
        for segment in string.segments {
            switch segment {
            case .stringSegment(let text):
                let content = text.content.text
                if let colon = content.lastIndex(of: ":") {
                    prefix = interpolated ? nil : plain + content[..<colon]
                }
                plain += content
            case .expressionSegment:
                interpolated = true
            }
        }
        return prefix
    }

    /// The simple name of a type: `Inner` for `Outer.Inner`, `Box` for `Box<T>`.
    static func simpleTypeName(_ type: TypeSyntax) -> String {
        if let identifier = type.as(IdentifierTypeSyntax.self) { return identifier.name.text }
        if let member = type.as(MemberTypeSyntax.self) { return member.name.text }
        if let attributed = type.as(AttributedTypeSyntax.self) { return simpleTypeName(attributed.baseType) }
        if let some = type.as(SomeOrAnyTypeSyntax.self) { return simpleTypeName(some.constraint) }
        if let optional = type.as(ImplicitlyUnwrappedOptionalTypeSyntax.self) { return simpleTypeName(optional.wrappedType) }
        return type.trimmedDescription
    }

    /// The simple names in an inheritance clause entry, splitting compositions (`A & B`).
    static func inheritedNames(_ type: TypeSyntax) -> [String] {
        if let composition = type.as(CompositionTypeSyntax.self) {
            return composition.elements.flatMap { inheritedNames($0.type) }
        }
        return [simpleTypeName(type)]
    }

    /// The type a call constructs, by simple name: `Foo` for `Foo(…)`, `Ns.Foo(…)`,
    /// `Foo.init(…)` and `Foo<A>(…)`.
    static func calleeTypeName(_ callee: ExprSyntax) -> String? {
        if let reference = callee.as(DeclReferenceExprSyntax.self) {
            return reference.baseName.text
        }
        if let member = callee.as(MemberAccessExprSyntax.self) {
            if member.declName.baseName.tokenKind == .keyword(.`init`) {
                return member.base.flatMap { calleeTypeName($0) }
            }
            return member.declName.baseName.text
        }
        if let specialized = callee.as(GenericSpecializationExprSyntax.self) {
            return calleeTypeName(specialized.expression)
        }
        return nil
    }

    /// Whether a name follows the convention for types (starts with an uppercase letter).
    static func looksLikeType(_ name: String) -> Bool {
        name.first?.isUppercase == true
    }
}
