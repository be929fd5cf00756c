"""督查考核: periods, indicators, the 通报 workbook, the 工作台's figures."""
