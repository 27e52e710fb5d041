import Edda
import EddaDiagram
import Foundation
import Hummingbird
import NIOCore

/// The Edda web viewer: server-rendered pages over an app's database, mountable into any
/// Hummingbird router.
///
/// ```swift
/// let router = Router()
/// EddaViewer(app: app).addRoutes(to: router.group("viewer"), basePath: "/viewer")
/// ```
///
/// Pages (relative to where the routes are mounted):
/// - `/`: the instance list, with search (workflow name or instance ID), status, date range and
///   input key/value filters, a page size and cursor pagination.
/// - `/workflow/{id}`: one instance: info, input, output or error, the `continued_from` chain, a
///   diagram coloured by execution, the details of every step, compensations and the history
///   timeline. `/workflow/{id}/diagram.svg` and `/workflow/{id}/diagram.mmd` export the diagram.
/// - `/start`: forms generated from the registered workflows' ``InputSchema``s.
///
/// Reading needs no JavaScript. State changes (cancel, start) are `POST` forms; they are refused
/// in ``Configuration/readOnly`` mode, from pages of untrusted origins
/// (``Configuration/crossSiteProtection``, loopback pages only by default) and, when
/// ``Configuration/bearerToken`` is set, without the token — as an `Authorization: Bearer`
/// header, or the cookie set by the `/login` page. The token guards changes only; reading needs
/// it too with ``Configuration/protectsReads``. Pages are sent with a strict
/// Content-Security-Policy.
public struct EddaViewer: Sendable {
    /// How the viewer behaves.
    public struct Configuration: Sendable {
        /// The title in the header and the browser tab.
        public var title = "Edda Workflow Viewer"
        /// Refuse every change (cancel, start): the viewer only reads.
        public var readOnly = false
        /// When set (and not empty), cancel and start need this token; reading pages needs it
        /// too if ``protectsReads`` is on. Without a token, whoever reaches the viewer can change
        /// things (from a trusted page).
        public var bearerToken: String?
        /// Whether reading pages (the list, instances with their inputs and outputs, diagrams,
        /// the start form) also needs ``bearerToken``. Default `false`: the token guards changes
        /// only and reading is open to whoever reaches the viewer. Has no effect without a token.
        public var protectsReads = false
        /// Always mark the sign-in cookie `Secure`. It is marked so anyway when the sign-in
        /// request came over HTTPS (its scheme, `X-Forwarded-Proto: https`, or an `https`
        /// origin). Default `false`.
        public var secureCookies = false
        /// Who cancellations are recorded as made by.
        public var cancelledBy = "viewer"
        /// Static flows by workflow name (from `EddaVisualizer`), drawn with the executed path
        /// highlighted. Workflows without one are drawn from their history.
        public var flows: [String: WorkflowFlow] = [:]
        /// Which browser pages may post changes (cancel, start, sign-in). Default: pages served
        /// from the loopback names (`localhost`, `127.0.0.1`, `[::1]`) only — the request's own
        /// `Host` is not trusted, as DNS rebinding forges it. A viewer reached under another name
        /// must list it: `crossSiteProtection.trustedHosts.append("ops.example.com")` or
        /// `crossSiteProtection.trustedOrigins = ["https://ops.example.com"]`.
        public var crossSiteProtection = CrossSiteProtection()
        /// Origins (`https://ops.example.com`) whose pages may post changes: the same list as
        /// ``crossSiteProtection``'s ``Edda/CrossSiteProtection/trustedOrigins``.
        public var trustedOrigins: [String] {
            get { crossSiteProtection.trustedOrigins }
            set { crossSiteProtection.trustedOrigins = newValue }
        }
        /// The largest form body accepted, in bytes.
        public var maxFormSize = 256 * 1024

        /// The defaults: read-write, no token, diagrams from history.
        public init() {}
    }

    /// The app whose database is shown, and which cancels and starts instances.
    public let app: EddaApp
    /// How the viewer behaves.
    public let configuration: Configuration

    /// A viewer over `app`.
    public init(app: EddaApp, configuration: Configuration = Configuration()) {
        self.app = app
        self.configuration = configuration
    }

    /// Adds the viewer's routes to `router`. `basePath` is the path `router` is mounted at
    /// (for example `"/viewer"` for `router.group("viewer")`), used to build links.
    public func addRoutes<Context: RequestContext>(to router: some RouterMethods<Context>, basePath: String = "") {
        let pages = Pages(viewer: self, basePath: basePath.hasSuffix("/") ? String(basePath.dropLast()) : basePath)
        router.get { request, _ in await pages.read(request) { try await pages.list(request, context: $0) } }
        router.get("workflow/:instance_id") { request, context in
            await pages.read(request) {
                try await pages.detail(context.parameters.get("instance_id"), request: request, context: $0)
            }
        }
        router.get("workflow/:instance_id/diagram.svg") { request, context in
            await pages.read(request) { _ in try await pages.diagram(context.parameters.get("instance_id"), mermaid: false) }
        }
        router.get("workflow/:instance_id/diagram.mmd") { request, context in
            await pages.read(request) { _ in try await pages.diagram(context.parameters.get("instance_id"), mermaid: true) }
        }
        router.post("workflow/:instance_id/cancel") { request, context in
            await pages.respond(request) { try await pages.cancel(request, context.parameters.get("instance_id"), context: $0) }
        }
        router.get("start") { request, _ in await pages.read(request) { try await pages.startForm(request, context: $0) } }
        router.post("start") { request, _ in await pages.respond(request) { try await pages.start(request, context: $0) } }
        router.get("login") { request, _ in await pages.respond(request) { pages.loginForm(message: nil, context: $0) } }
        router.post("login") { request, _ in await pages.respond(request) { try await pages.login(request, context: $0) } }
        router.get("theme") { request, _ in pages.theme(request) }
    }
}
