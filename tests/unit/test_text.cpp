#include "protocol/text.hpp"

#include <gtest/gtest.h>

#include <string>

using sl::parse_text_line;
using sl::TextParse;

TEST(TextFraming, CompleteLineIsReturnedWithoutItsTerminator) {
    TextParse t = parse_text_line("PING\nrest");
    ASSERT_EQ(t.status, TextParse::line);
    EXPECT_EQ(t.text, "PING");
    EXPECT_EQ(t.consumed, 5u) << "the LF belongs to the line";
}

TEST(TextFraming, CarriageReturnBeforeLineFeedIsDropped) {
    TextParse t = parse_text_line("PING\r\n");
    EXPECT_EQ(t.text, "PING");
    EXPECT_EQ(t.consumed, 6u);
}

TEST(TextFraming, CarriageReturnInsideTheLineIsKept) {
    EXPECT_EQ(parse_text_line("EC\rHO\n").text, "EC\rHO");
}

TEST(TextFraming, NoLineFeedMeansNeedMore) {
    EXPECT_EQ(parse_text_line("").status, TextParse::need_more);
    EXPECT_EQ(parse_text_line("PIN").status, TextParse::need_more);
    EXPECT_EQ(parse_text_line("PING\r").status, TextParse::need_more);
}

TEST(TextFraming, LineOfExactlyTheLimitIncludingLineFeedIsAccepted) {
    std::string line(sl::kMaxLine - 1, 'a');
    TextParse t = parse_text_line(line + "\n");
    ASSERT_EQ(t.status, TextParse::line) << "8191 bytes + LF = 8192 is within the limit";
    EXPECT_EQ(t.text.size(), sl::kMaxLine - 1);
}

TEST(TextFraming, LineOneByteOverTheLimitIsTooLong) {
    std::string line(sl::kMaxLine, 'a');
    EXPECT_EQ(parse_text_line(line + "\n").status, TextParse::too_long) << "8192 bytes + LF is over the limit";
    EXPECT_EQ(parse_text_line(line).status, TextParse::too_long) << "known as soon as 8192 bytes lack a LF";
    EXPECT_EQ(parse_text_line(line.substr(1)).status, TextParse::need_more) << "8191 bytes may still end in LF";
}

TEST(TextFraming, BlankLines) {
    EXPECT_TRUE(sl::is_blank(""));
    EXPECT_TRUE(sl::is_blank(" \t "));
    EXPECT_FALSE(sl::is_blank(" x"));
}
