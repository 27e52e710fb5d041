@testable import Edda
import Testing

@Suite("Delivery to waiting subscribers")
struct DeliverySweepTests {
    @Test("a competing channel stops at the consumer that takes the new message")
    func competingStopsWhenTaken() {
        var sweep = DeliverySweep(publishing: "new")
        #expect(sweep.pageSize == DeliverySweep.firstPageSize)
        sweep.record(.consumed(messageID: "older"), mode: "competing")
        #expect(!sweep.isFinished, "an older pending message went first: the new one still needs a consumer")
        sweep.record(.alreadyRecorded, mode: "competing")
        #expect(!sweep.isFinished)
        sweep.record(.consumed(messageID: "new"), mode: "competing")
        #expect(sweep.isFinished)
    }

    @Test("a message for one waiting instance takes one page: a short page ends the walk")
    func shortFirstPage() {
        var sweep = DeliverySweep(publishing: "new")
        sweep.record(.consumed(messageID: "new"), mode: "broadcast")
        sweep.read(page: 1, of: DeliverySweep.firstPageSize)
        #expect(sweep.isFinished)
    }

    @Test("a competing channel stops at the first consumer with nothing pending")
    func competingStopsWhenNothingPending() {
        var sweep = DeliverySweep(publishing: "new")
        sweep.record(.nothingPending, mode: "competing")
        #expect(sweep.isFinished)
    }

    @Test("a broadcast channel offers every waiting subscriber, in larger pages once its mode is known")
    func broadcastOffersEveryone() {
        var sweep = DeliverySweep(publishing: "new")
        sweep.record(.consumed(messageID: "new"), mode: "broadcast")
        sweep.record(.nothingPending, mode: "broadcast")
        sweep.record(.alreadyRecorded, mode: "broadcast")
        #expect(!sweep.isFinished)
        #expect(sweep.pageSize == DeliverySweep.broadcastPageSize)
        sweep.read(page: DeliverySweep.broadcastPageSize, of: DeliverySweep.broadcastPageSize)
        #expect(!sweep.isFinished, "a full page: there may be more")
        sweep.read(page: 3, of: DeliverySweep.broadcastPageSize)
        #expect(sweep.isFinished, "a short page was the last")
    }
}
